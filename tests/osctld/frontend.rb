#!/usr/bin/env ruby
# frozen_string_literal: true

# osctld's frontend half of ContainerControl, played for tests.
#
# osctld (vpsAdminOS, MIT) runs most container commands through
# `ContainerControl::Frontend#exec_runner`: it forks, places the child (user,
# cgroups, rlimits, environment, fds) and execs `osctld-ct-runner`, hands it a
# JSON envelope on a pipe and reads one JSON reply line from another pipe.
# This file does exactly what osctld's frontends do up to and around that call,
# with Debian's Ruby and its standard library only, so that any runner binary
# can be tested against osctld's frontends without osctld. It is laid out like
# osctld's code (each section names the osctld file it follows, paths relative
# to osctld/lib/osctld/) so that a reviewer can compare the two side by side;
# the code itself is written for this file.
#
# Usage:
#
#   frontend.rb RUNNER JSON      the input document as the second argument
#   frontend.rb RUNNER -         the input document on stdin
#
# RUNNER is the binary exec'd in place of osctld-ct-runner. The input:
#
#   {
#     "container": {
#       "pool": "default", "id": "ct1", "user": "ctl-ct1", "ugid": 900001,
#       "home": "/.../homes/ctl-ct1", "lxc_home": "/.../lxc/ctl-ct1",
#       "log_file": "/.../ct1.log",
#       "cgroup_path": "ctl/ct1",               # osctld's Container#cgroup_path
#       "entry_cgroup_path": "ctl/ct1",         # osctld's Container#entry_cgroup_path
#       "rootfs": "/.../rootfs",                # osctld's run_conf.rootfs
#       "prlimits": {"nofile": {"soft": 1024, "hard": 4096}},
#       "state": "running",                     # osctld's Container#state
#       "net_config": [ ... ]                   # what NetConfig.create(ct).export gives
#     },
#     "command": "Exec",                        # a class below Commands::
#     "args": [ ... ],                          # positional arguments of Frontend#execute
#     "kwargs": { ... }                         # keyword arguments of Frontend#execute
#   }
#
# Arguments are those of each command's `Frontend#execute` (see the command
# sections below). Where osctld's caller hands an IO, the input says what to
# use instead:
#
#   - `stdin`: absent or null: none; {"inherit": true}: a copy of this
#     process's own stdin (as osctld would pass an fd it received from its
#     client); a string: Syscmd gets the String itself (its frontend writes it
#     into a pipe), Exec and Runscript get the read end of a pipe holding it.
#   - `stdout`, `stderr` of Exec and Runscript: always anonymous temporary
#     files, whose contents are reported (osctld passes its client's fds).
#
# Any other command name runs `exec_runner(args:, kwargs:)` with the given
# arguments as they are (diagnostic commands such as the runner's Identity).
#
# Output: one JSON line on stdout, after whatever the runner itself wrote there
# (osctld passes its own stdout and stderr to runners that get no others):
#
#   {"ok": true, "data": <what Command.run! returns>, ...}
#   {"ok": false, "message": "...", "user_runner": <bool>, "exception": "...", ...}
#
# plus, for the checks of a test:
#
#   "exec_runner": [{"envelope": "<the JSON written to the runner>",
#                    "reply": "<the reply line, or null at EOF>",
#                    "runner_pid": N, "exitstatus": N|null, "termsig": N|null}, ...]
#   "stdout", "stderr": what Exec/Runscript's program wrote (strings)
#   "frontend": what the frontend decided (mode, paths of temporary scripts)
#   "fork_runner": [...]   osctld would call fork_runner here with these args
#                          (a forked osctld running its own Ruby runner
#                          in-process, which no runner binary can take part
#                          in); nothing is run
#
# Differences from osctld, all forced by the host, none by the runner:
#
#   - syslog namespaces (vpsAdminOS kernel) are not attached in switch_to;
#   - prlimits are applied with setrlimit in the forked child itself (osctld
#     uses prlimit(2) on that same pid: the same effect);
#   - the cgroup hierarchies are read from /proc/self/mountinfo (osctld lists
#     /sys/fs/cgroup, which on a hybrid host names the same hierarchies);
#   - Container#ensure_run_conf, Mounts#prune and DistConfig's pre-start hook,
#     which concern osctld's own records, do nothing;
#   - the temporary scripts Runscript and the network mode place in the rootfs
#     are chowned to the owner of the rootfs' top directory (the container's
#     root) after they are written. On vpsAdminOS the rootfs is a ZFS dataset
#     whose ids the kernel shifts, so root's file is the container root's
#     there; on a plain directory rootfs a 0500 file of the host's root is one
#     the container's root may not execute (no capability of a user namespace
#     reaches a file whose owner it does not map). Set
#     "script_owner": "root" in the container description to keep osctld's
#     host root owner.
#   - "init_script_wait" in the container description replaces the init
#     script's `read _` (how it waits for its release) with other shell code:
#     the tests play a container root that keeps the script from ending.

require 'json'
require 'socket'
require 'tempfile'

module OsCtld
  # The runner binary exec'd in place of `::OsCtld.bin('osctld-ct-runner')`.
  class << self
    attr_accessor :runner_path
  end

  # libosctl/exceptions.rb: OsCtl::Lib::SystemCommandFailed, which osctld
  # raises as OsCtld::SystemCommandFailed.
  class SystemCommandFailed < StandardError
    attr_reader :cmd, :rc, :output

    def initialize(cmd, rc, output)
      @cmd = cmd
      @rc = rc
      @output = output
      super("command '#{cmd}' exited with code '#{rc}', output: '#{output}'")
    end
  end

  # libosctl/system_command_result.rb
  class SystemCommandResult
    attr_reader :exitstatus, :output

    def initialize(exitstatus, output)
      @exitstatus = exitstatus
      @output = output
    end

    def to_h
      { exitstatus:, output: }
    end
  end

  # What the test gets to see besides the result.
  module Observed
    class << self
      def calls
        @calls ||= []
      end

      def frontend
        @frontend ||= {}
      end

      attr_accessor :fork_runner, :output
    end
  end

  # --------------------------------------------------------------------------
  # cgroup.rb: the parts exec_runner and SwitchUser.switch_to use
  # (mkpath_all with chown, attach_to_all, thaw_tree for Stop)
  module CGroup
    FS = '/sys/fs/cgroup'

    # Every cgroup hierarchy of the host: v1 controllers under /sys/fs/cgroup/*
    # and the v2 one (at /sys/fs/cgroup/unified on a hybrid host).
    def self.subsystems
      @subsystems ||= File.readlines('/proc/self/mountinfo').filter_map do |line|
        left, right = line.split(' - ', 2)
        next unless right

        fstype, _source, super_opts = right.split(' ')
        next unless %w[cgroup cgroup2].include?(fstype)

        mountpoint = left.split(' ')[4].gsub(/\\([0-7]{3})/) { Regexp.last_match(1).to_i(8).chr }
        next unless mountpoint == FS || mountpoint.start_with?("#{FS}/")

        {
          path: mountpoint,
          unified: fstype == 'cgroup2',
          controllers: fstype == 'cgroup' ? super_opts.split(',') : []
        }
      end.uniq { |s| s[:path] }
    end

    # osctld reads the version it detected at boot; a host is v2 when its only
    # hierarchy is cgroup2.
    def self.v2?
      subsystems.all? { |s| s[:unified] }
    end

    def self.delegate_files
      @delegate_files ||= File.read('/sys/kernel/cgroup/delegate').split
    rescue Errno::ENOENT
      @delegate_files = []
    end

    def self.abs_cgroup_path(subsys, *path)
      File.join(subsys[:path], *path)
    end

    # Creates `path` (components) in one hierarchy; chowns the last cgroup
    # and its cgroup.procs (and the delegation files in a v2 hierarchy).
    def self.mkpath(subsys, path, chown: nil, leaf: true)
      created = false
      path.each_index do |i|
        cgroup = abs_cgroup_path(subsys, *path[0..i])
        created = create(cgroup, subsys, delegate: i + 1 < path.length || !leaf)
      end

      if chown
        cgroup = abs_cgroup_path(subsys, *path)
        File.chown(chown, chown, cgroup)
        File.chown(chown, chown, File.join(cgroup, 'cgroup.procs'))

        if subsys[:unified]
          delegate_files.each do |f|
            File.chown(chown, chown, File.join(cgroup, f))
          rescue Errno::ENOENT
            next
          end
        end
      end

      created
    end

    def self.mkpath_all(path, chown: nil)
      subsystems.each { |subsys| mkpath(subsys, path, chown:) }
    end

    def self.create(cgroup, subsys, delegate:)
      begin
        Dir.mkdir(cgroup)
      rescue Errno::EEXIST
        return false
      end

      delegate_available_controllers(cgroup) if v2? && delegate
      init_cgroup(subsys, cgroup)
      true
    end

    # A new v1 cpuset cgroup takes no tasks until cpus and mems are set.
    def self.init_cgroup(subsys, cgroup)
      return unless subsys[:controllers].include?('cpuset')

      %w[cpuset.cpus cpuset.mems].each { |param| inherit_param(subsys[:path], cgroup, param) }
      File.write(File.join(cgroup, 'cgroup.clone_children'), '1')
    end

    def self.inherit_param(base, cgroup, param)
      value = File.read(File.join(cgroup, param)).strip
      return value unless value.empty?
      raise "parameter #{param} not set in root cgroup #{base}" if base == cgroup

      value = inherit_param(base, File.dirname(cgroup), param)
      File.write(File.join(cgroup, param), value)
      value
    end

    def self.delegate_available_controllers(cgroup)
      controllers = File.read(File.join(cgroup, 'cgroup.controllers')).split
      File.write(File.join(cgroup, 'cgroup.subtree_control'), controllers.map { |c| "+#{c}" }.join(' '))
    end

    def self.reset_subtree_control(cgroup)
      controllers = File.read(File.join(cgroup, 'cgroup.subtree_control')).split
      return if controllers.empty?

      File.write(File.join(cgroup, 'cgroup.subtree_control'), controllers.map { |c| "-#{c}" }.join(' '))
    end

    def self.attach_to(subsys, path, pid: nil)
      cgroup = abs_cgroup_path(subsys, *path)
      attach_pid = pid || Process.pid

      attached = %w[cgroup.procs tasks].any? do |tasks|
        File.open(File.join(cgroup, tasks), 'w') { |f| f.puts(attach_pid) }
        true
      rescue Errno::ENOENT
        false
      end
      raise "unable to attach pid #{attach_pid} to cgroup #{cgroup.inspect}" unless attached
    end

    def self.attach_to_all(path, pid: nil)
      subsystems.each { |subsys| attach_to(subsys, path, pid:) }
    end

    # Thaws the freezer cgroup at `path` and everything below it.
    def self.thaw_tree(path)
      subsystems.each do |subsys|
        next unless subsys[:controllers].include?('freezer')

        thaw_dir(abs_cgroup_path(subsys, path))
      end
    end

    def self.thaw_dir(dir)
      return unless Dir.exist?(dir)

      begin
        File.write(File.join(dir, 'freezer.state'), 'THAWED')
      rescue SystemCallError
        nil
      end
      Dir.children(dir).each do |child|
        sub = File.join(dir, child)
        thaw_dir(sub) if File.directory?(sub)
      end
    end
  end

  # --------------------------------------------------------------------------
  # switch_user.rb: SwitchUser.fork, switch_to, apply_prlimits, close_fds
  module SwitchUser
    # Forks; the child closes every fd but the kept ones (and 0, 1, 2).
    def self.fork(keep_fds: [], keep_stdfds: true, &block)
      keep = keep_fds.clone
      keep.push(0, 1, 2) if keep_stdfds

      Process.fork do
        close_fds(except: keep)
        block.call
      end
    end

    # Becomes the container's user in its entry cgroups.
    def self.switch_to(sysuser, ugid, homedir, cgroup_path)
      ENV.delete('XDG_SESSION_ID')
      # LXC keeps its lock files here.
      ENV['XDG_RUNTIME_DIR'] = File.join(homedir, '.cache/lxc/run')
      ENV['HOME'] = homedir
      ENV['USER'] = sysuser

      CGroup.attach_to_all(cgroup_path.split('/'))

      # (osctld attaches a syslog namespace here; none on this kernel.)

      Process.groups = [ugid]
      Process::Sys.setresgid(ugid, ugid, ugid)
      Process::Sys.setresuid(ugid, ugid, ugid)
    end

    # osctld calls prlimit(2) on `pid`, which is the calling process itself.
    def self.apply_prlimits(pid, prlimits)
      raise ArgumentError, 'prlimits apply to this process only' if pid != Process.pid

      prlimits.each do |name, limit|
        resource = Process.const_get("RLIMIT_#{name.to_s.upcase.delete_prefix('RLIMIT_')}")
        Process.setrlimit(
          resource,
          limit[:soft] == 'unlimited' ? Process::RLIM_INFINITY : limit[:soft],
          limit[:hard] == 'unlimited' ? Process::RLIM_INFINITY : limit[:hard]
        )
      end
    end

    def self.close_fds(except: [])
      keep = except.map { |v| v.is_a?(::IO) ? v.fileno : v }

      Dir.children('/proc/self/fd').map(&:to_i).each do |fd|
        next if keep.include?(fd)

        begin
          IO.new(fd).close
        rescue ArgumentError, Errno::EBADF
          next
        end
      end
    end
  end

  # --------------------------------------------------------------------------
  # net_config.rb: NetConfig.create(ct).export (the test passes the export)
  class NetConfig
    def self.create(ct)
      new(ct.net_config)
    end

    def initialize(exported)
      @exported = exported
    end

    def export
      @exported
    end
  end

  # A stand-in for osctld's Container (container.rb) with what the frontends
  # read, filled in from the input.
  class Container
    User = Struct.new(:sysusername, :ugid, :homedir)
    Pool = Struct.new(:name)
    RunConf = Struct.new(:rootfs)
    PrLimits = Struct.new(:limits) do
      def export
        limits
      end
    end
    Mounts = Struct.new(:ct) do
      def prune; end
    end

    attr_reader :id, :pool, :user, :lxc_home, :log_path, :cgroup_path, :entry_cgroup_path,
                :prlimits, :state, :net_config, :script_owner, :init_script_wait

    def initialize(cfg)
      @id = cfg.fetch(:id)
      @pool = Pool.new(cfg.fetch(:pool))
      @user = User.new(cfg.fetch(:user), cfg.fetch(:ugid), cfg.fetch(:home))
      @lxc_home = cfg.fetch(:lxc_home)
      @log_path = cfg.fetch(:log_file)
      @cgroup_path = cfg.fetch(:cgroup_path)
      @entry_cgroup_path = cfg.fetch(:entry_cgroup_path)
      @rootfs = cfg.fetch(:rootfs)
      @prlimits = PrLimits.new(cfg.fetch(:prlimits, {}))
      @state = cfg.fetch(:state).to_sym
      @net_config = cfg.fetch(:net_config, [])
      @script_owner = cfg.fetch(:script_owner, 'rootfs')
      @init_script_wait = cfg.fetch(:init_script_wait, 'read _')
    end

    def running?
      state == :running
    end

    # osctld's run configuration knows the init pid only of a container it
    # started; exec_runner uses it for the syslog namespace.
    def init_pid
      nil
    end

    def get_run_conf
      RunConf.new(@rootfs)
    end

    def ensure_run_conf
      get_run_conf
    end

    def mounts
      Mounts.new(self)
    end

    def abs_cgroup_path(subsys)
      CGroup.abs_cgroup_path(subsys, cgroup_path)
    end
  end

  # osctld's distribution hooks (distconfig/) adapt a rootfs before a start;
  # nothing to adapt in a test rootfs.
  module DistConfig
    def self.run(_run_conf, _hook); end
  end

  module ContainerControl
    class Error < StandardError; end

    class UserRunnerError < Error; end

    # A frontend calls fork_runner here: see "fork_runner" in the header.
    class NotExecRunner < Error; end

    module Commands; end
    module Utils; end

    # ------------------------------------------------------------------------
    # container_control/result.rb
    class Result
      def self.from_runner(data)
        if data[:status]
          new(true, data: data[:output])
        else
          new(false, message: data[:message])
        end
      end

      attr_reader :status, :data, :message

      def initialize(status, data: nil, message: nil, user_runner: false)
        @status = status
        @data = data
        @message = message
        @user_runner = user_runner
      end

      def ok?
        status ? true : false
      end

      def user_runner?
        @user_runner
      end
    end

    # ------------------------------------------------------------------------
    # container_control/command.rb: Command.run!
    class Command
      def self.run!(ct, *args, **kwargs)
        ret = self::Frontend.new(self, ct).execute(*args, **kwargs)
        return ret unless ret.is_a?(Result)
        return ret.data if ret.ok?
        raise UserRunnerError, ret.message if ret.user_runner?

        raise Error, ret.message
      end
    end

    # ------------------------------------------------------------------------
    # container_control/frontend.rb: Frontend#exec_runner
    class Frontend
      attr_reader :command_class, :ct

      def initialize(command_class, ct)
        @command_class = command_class
        @ct = ct
      end

      protected

      def exec_runner(opts = {})
        # The envelope goes through one pipe, the reply comes back through another.
        cmd_r, cmd_w = IO.pipe
        ret_r, ret_w = IO.pipe

        stdin = opts[:stdin]
        stdout = opts.fetch(:stdout, $stdout)
        stderr = opts.fetch(:stderr, $stderr)

        sysuser = ct.user.sysusername
        ugid = ct.user.ugid
        homedir = ct.user.homedir
        cgroup_path = ct.entry_cgroup_path
        prlimits = ct.prlimits.export

        runner_opts = {
          name: command_class.name,

          pool: ct.pool.name,
          id: ct.id,
          lxc_home: ct.lxc_home,
          user_home: ct.user.homedir,
          log_file: ct.log_path,

          args: opts.fetch(:args, []),
          kwargs: opts.fetch(:kwargs, {}),

          return: ret_w.fileno,
          stdin: stdin && stdin.fileno,
          stdout: stdout.fileno,
          stderr: stderr.fileno
        }

        CGroup.mkpath_all(cgroup_path.split('/'), chown: ugid)

        # On a v2 host lxc-execute needs the controllers the entry cgroup
        # delegates switched off again.
        if opts.fetch(:reset_subtree_control, false) && CGroup.v2?
          CGroup.subsystems.each do |subsys|
            CGroup.reset_subtree_control(ct.abs_cgroup_path(subsys))
          end
        end

        pid = SwitchUser.fork(keep_fds: [cmd_r, ret_w, stdin, stdout, stderr].compact) do
          $stdin.reopen(cmd_r)

          [cmd_r, ret_w, stdin, stdout, stderr].compact.each do |io|
            io.close_on_exec = false
          end

          SwitchUser.apply_prlimits(Process.pid, prlimits)
          SwitchUser.switch_to(sysuser, ugid, homedir, cgroup_path)
          # (the array form only keeps a path with spaces away from a shell)
          Process.exec([OsCtld.runner_path, OsCtld.runner_path])
          exit
        end

        stdin&.close
        stdout.close if stdout != $stdout
        stderr.close if stderr != $stderr

        envelope = runner_opts.to_json
        cmd_w.write(envelope)
        cmd_w.close

        ret_w.close

        call = { envelope:, reply: nil, runner_pid: pid }
        Observed.calls << call

        begin
          line = ret_r.readline
          call[:reply] = line
          ret = JSON.parse(line, symbolize_names: true)
          Process.wait(pid)
          record_status(call, $?)
          Result.from_runner(ret)
        rescue EOFError
          Process.wait(pid)
          record_status(call, $?)
          Result.new(false, message: 'user runner failed', user_runner: true)
        end
      end

      def fork_runner(opts = {})
        Observed.fork_runner = opts.fetch(:args, [])
        raise NotExecRunner, 'osctld runs this through fork_runner (its own Ruby runner, ' \
                             'in a forked osctld); not exec_runner, nothing run'
      end

      private

      def record_status(call, status)
        call[:exitstatus] = status.exitstatus
        call[:termsig] = status.termsig
      end
    end

    # ------------------------------------------------------------------------
    # container_control/utils/runscript.rb: Utils::Runscript::Frontend
    module Utils::Runscript
      module Frontend
        def add_network_opts(opts)
          opts.update(
            init_script: File.join('/', File.basename(init_script.path)),
            net_config: NetConfig.create(ct).export
          )
        end

        def init_script
          return @init_script if @init_script

          f = Tempfile.create(['.runscript', '.sh'], ct.get_run_conf.rootfs)
          f.chmod(0o500)
          f.puts('#!/bin/sh')
          f.puts('echo ready')
          f.puts(ct.init_script_wait)
          f.close
          give_to_container_root(f.path)
          Observed.frontend[:init_script] = f.path

          @init_script = f
        end

        def cleanup_init_script
          @init_script && unlink_file(@init_script.path)
        end

        def unlink_file(path)
          File.unlink(path)
        rescue SystemCallError
          nil
        end

        # See "Differences from osctld" in the header.
        def give_to_container_root(path)
          return if ct.script_owner == 'root'

          top = File.stat(ct.get_run_conf.rootfs)
          File.chown(top.uid, top.gid, path)
        end
      end
    end

    # ------------------------------------------------------------------------
    # container_control/utils/wall.rb: Utils::Wall::Frontend
    module Utils::Wall
      module Frontend
        def make_message(message, banner: true)
          text =
            if banner
              "Message from host machine #{Socket.gethostname} (#{Time.now}):\n\n#{message}"
            else
              message
            end

          "\n\n#{text}\n\n"
        end
      end
    end

    # ------------------------------------------------------------------------
    # container_control/commands/freeze.rb
    class Commands::Freeze < Command
      class Frontend < ContainerControl::Frontend
        def execute
          ret = exec_runner
          ret.ok? || ret
        end
      end
    end

    # container_control/commands/unfreeze.rb
    class Commands::Unfreeze < Command
      class Frontend < ContainerControl::Frontend
        def execute
          ret = exec_runner
          ret.ok? || ret
        end
      end
    end

    # Mode selection shared by Exec and Runscript (exec.rb and runscript.rb
    # have the same lines).
    module ModeOf
      def mode_of(opts)
        if ct.running?
          :running
        elsif opts[:run] && opts[:network]
          :run_network
        elsif opts[:run]
          :run
        else
          raise ContainerControl::Error, 'container not running'
        end
      end

      def prepare_run(mode)
        return unless %i[run run_network].include?(mode)

        ct.ensure_run_conf
        ct.mounts.prune
        DistConfig.run(ct.get_run_conf, :pre_start)
      end
    end

    # container_control/commands/exec.rb
    class Commands::Exec < Command
      class Frontend < ContainerControl::Frontend
        include Utils::Runscript::Frontend
        include ModeOf

        # opts: cmd, stdin, stdout, stderr, run, network
        def execute(opts)
          runner_opts = { cmd: opts[:cmd] }

          mode = mode_of(opts)
          Observed.frontend[:mode] = mode

          add_network_opts(runner_opts) if opts[:network]

          prepare_run(mode)

          ret = exec_runner(
            args: [mode, runner_opts],
            stdin: opts[:stdin],
            stdout: opts[:stdout],
            stderr: opts[:stderr],
            reset_subtree_control: mode != :running
          )

          ret.ok? ? ret.data : ret
        ensure
          cleanup_init_script
        end
      end
    end

    # container_control/commands/runscript.rb
    class Commands::Runscript < Command
      class Frontend < ContainerControl::Frontend
        include Utils::Runscript::Frontend
        include ModeOf

        # opts: script (host path or nil: read it from stdin), args, stdin,
        # stdout, stderr, run, network
        def execute(opts)
          runner_opts = { args: opts[:args] }

          mode = mode_of(opts)
          Observed.frontend[:mode] = mode

          add_network_opts(runner_opts) if opts[:network]

          script = copy_script(opts[:script], opts[:stdin])
          runner_opts[:script] = File.join('/', File.basename(script.path))

          prepare_run(mode)

          ret = exec_runner(
            args: [mode, runner_opts],
            stdin: opts[:script].nil? ? nil : opts[:stdin],
            stdout: opts[:stdout],
            stderr: opts[:stderr],
            reset_subtree_control: mode != :running
          )

          ret.ok? ? ret.data : ret
        ensure
          if script
            script.close
            unlink_file(script.path)
          end
          cleanup_init_script
        end

        protected

        def copy_script(src, stdin)
          script = Tempfile.create(['.runscript', '.sh'], ct.get_run_conf.rootfs)
          script.chmod(0o500)

          if src.nil?
            IO.copy_stream(stdin, script)
            stdin.close
          else
            File.open(src, 'r') { |f| IO.copy_stream(f, script) }
          end

          script.close
          give_to_container_root(script.path)
          Observed.frontend[:script] = script.path
          script
        end
      end
    end

    # container_control/commands/syscmd.rb
    class Commands::Syscmd < Command
      class Frontend < ContainerControl::Frontend
        # opts: stdin (String or IO), run, network, valid_rcs (list or :all)
        def execute(cmd, opts = {})
          opts[:valid_rcs] ||= []

          in_r = nil
          out_r, out_w = IO.pipe

          if opts[:stdin].is_a?(String)
            in_r, in_w = IO.pipe
            in_w.write(opts[:stdin])
            in_w.close
          elsif opts[:stdin]
            in_r = opts[:stdin]
          end

          if !ct.running? && !opts[:run]
            raise SystemCommandFailed.new(cmd, 1, 'Container is not running')
          end

          begin
            ret = Commands::Exec.run!(
              ct,
              cmd:,
              stdin: in_r,
              stdout: out_w,
              stderr: out_w,
              run: opts[:run],
              network: opts[:network]
            )
          rescue ContainerControl::Error => e
            out_r.close
            raise SystemCommandFailed.new(
              cmd,
              1,
              "Command '#{cmd}' within CT #{ct.id} failed: #{e.message}"
            )
          ensure
            in_r.close if in_r && opts[:stdin].is_a?(String)
            out_w.close
          end

          out = out_r.read
          out_r.close

          if ret != 0 && opts[:valid_rcs] != :all && !opts[:valid_rcs].include?(ret)
            raise SystemCommandFailed.new(
              cmd,
              1,
              "Command '#{cmd}' within CT #{ct.id} failed with exit code #{ret}: #{out}"
            )
          end

          SystemCommandResult.new(ret, out)
        end
      end
    end

    # container_control/commands/wall.rb
    class Commands::Wall < Command
      class Frontend < ContainerControl::Frontend
        include Utils::Wall::Frontend

        def execute(message:, banner: true)
          raise ContainerControl::Error, 'container not running' unless ct.running?

          ret = exec_runner(args: [make_message(message, banner:)])
          ret.ok? || ret
        end
      end
    end

    # container_control/commands/mount.rb
    class Commands::Mount < Command
      class Frontend < ContainerControl::Frontend
        # opts: shared_dir, src, dst
        def execute(opts)
          ret = exec_runner(args: [opts])
          ret.ok? || ret
        end
      end
    end

    # container_control/commands/unmount.rb
    class Commands::Unmount < Command
      class Frontend < ContainerControl::Frontend
        def execute(mountpoint)
          ret = exec_runner(args: [mountpoint])
          ret.ok? || ret
        end
      end
    end

    # container_control/commands/stop.rb
    class Commands::Stop < Command
      class Frontend < ContainerControl::Frontend
        include Utils::Wall::Frontend

        # mode: :stop, :shutdown or :kill; opts: timeout, message
        def execute(mode, **opts)
          raise ArgumentError, "invalid stop mode '#{mode}'" unless %i[stop shutdown kill].include?(mode)

          CGroup.thaw_tree(ct.cgroup_path) if mode == :kill

          if opts[:message] && ct.running?
            opts = opts.merge(message: make_message(opts[:message]))
          else
            opts.delete(:message)
          end

          ret =
            if %i[stop shutdown].include?(mode) && ct.running?
              exec_runner(args: [mode, opts.merge(halt_from_inside: true)])
            else
              fork_runner(args: [mode, opts])
            end

          if ret.ok?
            true
          elsif mode == :stop
            CGroup.thaw_tree(ct.cgroup_path)
            ret = fork_runner(args: [:kill, opts])
            ret.ok? || ret
          else
            ret
          end
        end
      end
    end

    # StopByHalt and StopRunit have the same frontend
    # (container_control/commands/stop_by_halt.rb, stop_runit.rb).
    module MessageOnlyFrontend
      def execute(**opts)
        raise ContainerControl::Error, 'container not running' unless ct.running?

        msg = (make_message(opts[:message]) if opts[:message])

        ret = exec_runner(args: [{ message: msg }])
        ret.ok? || ret
      end
    end

    # container_control/commands/stop_by_halt.rb
    class Commands::StopByHalt < Command
      class Frontend < ContainerControl::Frontend
        include Utils::Wall::Frontend
        include MessageOnlyFrontend
      end
    end

    # container_control/commands/stop_runit.rb
    class Commands::StopRunit < Command
      class Frontend < ContainerControl::Frontend
        include Utils::Wall::Frontend
        include MessageOnlyFrontend
      end
    end
  end
end

# ----------------------------------------------------------------------------
# The test's side: turn the input into the arguments osctld's callers pass,
# call Command.run! and report.
module FrontendClient
  Commands = OsCtld::ContainerControl::Commands

  # An anonymous temporary file for a program's output. Returns [the file the
  # report reads back, a copy of it to hand over (exec_runner closes that)].
  def self.capture
    file = Tempfile.create('osctld-frontend-out')
    File.unlink(file.path)
    [file, file.dup]
  end

  def self.read_back(file)
    file.rewind
    text = file.read
    file.close
    text.force_encoding(Encoding::UTF_8)
    text.valid_encoding? ? text : text.force_encoding(Encoding::BINARY).encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
  end

  # The stdin an IO-taking frontend gets; see "stdin" in the header.
  def self.stdin_io(spec)
    case spec
    when nil then nil
    when Hash
      raise ArgumentError, "bad stdin #{spec.inspect}" unless spec[:inherit]

      $stdin.dup
    when String
      r, w = IO.pipe
      Thread.new do
        w.write(spec)
      ensure
        w.close
      end
      r
    else
      raise ArgumentError, "bad stdin #{spec.inspect}"
    end
  end

  # Runs the command; returns [data, extra report fields].
  def self.dispatch(ct, input)
    name = input.fetch(:command)
    args = input.fetch(:args, [])
    kwargs = input.fetch(:kwargs, {})

    case name
    when 'Freeze', 'Unfreeze'
      [Commands.const_get(name).run!(ct), {}]

    when 'Exec', 'Runscript'
      opts = args.fetch(0).dup
      out, out_copy = capture
      err, err_copy = capture
      opts[:stdin] = stdin_io(opts[:stdin])
      opts[:stdout] = out_copy
      opts[:stderr] = err_copy
      begin
        [Commands.const_get(name).run!(ct, opts), {}]
      ensure
        [out_copy, err_copy].each { |f| f.close unless f.closed? }
        OsCtld::Observed.output = { stdout: read_back(out), stderr: read_back(err) }
      end

    when 'Syscmd'
      cmd = args.fetch(0)
      opts = (args[1] || {}).dup
      opts[:stdin] = stdin_io(opts[:stdin]) unless opts[:stdin].is_a?(String)
      opts[:valid_rcs] = :all if opts[:valid_rcs] == 'all'
      [Commands::Syscmd.run!(ct, cmd, opts).to_h, {}]

    when 'Wall'
      [Commands::Wall.run!(ct, **kwargs), {}]

    when 'Mount'
      [Commands::Mount.run!(ct, args.fetch(0)), {}]

    when 'Unmount'
      [Commands::Unmount.run!(ct, args.fetch(0)), {}]

    when 'Stop'
      [Commands::Stop.run!(ct, args.fetch(0).to_sym, **kwargs), {}]

    when 'StopByHalt', 'StopRunit'
      [Commands.const_get(name).run!(ct, **kwargs), {}]

    else
      [generic(ct, name, args, kwargs), {}]
    end
  end

  # A command osctld does not have (e.g. the runner's Identity): exec_runner
  # with the arguments as given, under osctld's naming scheme.
  def self.generic(ct, name, args, kwargs)
    klass = Class.new(OsCtld::ContainerControl::Command)
    Commands.const_set(name, klass)
    frontend = Class.new(OsCtld::ContainerControl::Frontend) do
      define_method(:execute) do
        ret = exec_runner(args:, kwargs:)
        ret.ok? ? ret.data : ret
      end
    end
    klass.const_set(:Frontend, frontend)
    klass.run!(ct)
  end

  def self.main(argv)
    unless argv.length == 2
      warn "usage: #{$PROGRAM_NAME} RUNNER JSON|-"
      exit(2)
    end

    OsCtld.runner_path = argv[0]
    doc = argv[1] == '-' ? $stdin.read : argv[1]
    input = JSON.parse(doc, symbolize_names: true)
    ct = OsCtld::Container.new(input.fetch(:container))

    report =
      begin
        data, extra = dispatch(ct, input)
        { ok: true, data: }.merge(extra)
      rescue OsCtld::ContainerControl::NotExecRunner => e
        { ok: false, message: e.message, user_runner: false, exception: e.class.name }
      rescue OsCtld::ContainerControl::UserRunnerError => e
        { ok: false, message: e.message, user_runner: true, exception: e.class.name }
      rescue OsCtld::ContainerControl::Error, OsCtld::SystemCommandFailed => e
        { ok: false, message: e.message, user_runner: false, exception: e.class.name }
      end

    report.merge!(OsCtld::Observed.output || {})
    report[:exec_runner] = OsCtld::Observed.calls
    report[:frontend] = OsCtld::Observed.frontend
    report[:fork_runner] = OsCtld::Observed.fork_runner if OsCtld::Observed.fork_runner
    $stdout.puts(report.to_json)
    $stdout.flush
  end
end

FrontendClient.main(ARGV) if $PROGRAM_NAME == __FILE__
