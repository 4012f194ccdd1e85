//! The built-in container commands. Linking this crate registers them.
