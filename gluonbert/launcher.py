"""Start a multi-worker training cluster and stop every process of it.

kvstore backends (dist_sync, dist_sync_device, dist_async): one scheduler, S servers and N
workers of MXNet's parameter server, wired by the DMLC_* environment. horovod: N ranks over gloo
with an in-process rendezvous server. On this machine every process listens on loopback;
for several hosts the per-host commands are printed or run over ssh (kvstore), or handed to
`horovodrun` (horovod).

The Supervisor starts each process in its own session (and, on Linux, has the kernel kill it if
the launcher dies), then watches them: when any process fails (or a scheduler/server exits
before the workers are done) it stops all the others and exits non-zero naming the dead one;
on Ctrl-C, SIGTERM or --timeout it stops them all too.
"""
import argparse
import ctypes
import dataclasses
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

from .train.distributed import HOROVOD_INSTALL, KVSTORE_BACKENDS

BACKENDS = KVSTORE_BACKENDS + ('horovod',)
# Scheduler and servers: `import mxnet` with DMLC_ROLE=server|scheduler runs the node, but from
# inside mxnet's own import, where a dist_async server then fails to unpickle an optimizer class
# that imports mxnet (gluonbert's AdamW). So: import mxnet with DMLC_ROLE unset (no node
# starts), then restore the role and start the node.
SERVER_COMMAND = ['-c', "import os; role = os.environ.pop('DMLC_ROLE'); import mxnet; "
                        "os.environ['DMLC_ROLE'] = role; "
                        "from mxnet.kvstore import kvstore_server; "
                        "kvstore_server._init_kvstore_server_module()"]
LEAKY_VARIABLES = ('PORT',)  # ps-lite reads PORT as its own port: a leaked one breaks the server
EXIT_TIMEOUT, EXIT_SIGINT = 124, 130
try:  # loaded here, not in the forked child
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


@dataclasses.dataclass
class ProcessSpec:
    """One process of the cluster: a name for messages, its command, extra environment, host."""
    name: str
    argv: list
    env: dict
    host: str = None  # None: this machine
    is_worker: bool = True


class Stop(Exception):
    """A signal asked the launcher to stop (carries the exit code)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def free_port(host: str = '127.0.0.1') -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def parse_hosts(hosts: str | None = None, hostfile: str | None = None
                ) -> list[tuple[str, int]]:
    """'a:2,b' or a hostfile ('host[:slots]' or 'host slots=N' per line, # comments) ->
    [(host, slots)]; slots default to 1."""
    entries = []
    if hostfile:
        with open(hostfile, encoding='utf-8') as f:
            entries = [line.split('#')[0].strip() for line in f]
    if hosts:
        entries += [h.strip() for h in hosts.split(',')]
    parsed = []
    for entry in filter(None, entries):
        entry = entry.replace(' slots=', ':')
        host, _, slots = entry.partition(':')
        if slots and not slots.isdigit():
            raise ValueError(f'bad host entry {entry!r}: expected host[:slots]')
        parsed.append((host, int(slots) if slots else 1))
    return parsed


def place_workers(hosts: Sequence[tuple[str, int]], num_workers: int) -> list[str]:
    """Host of each worker, filling each host's slots in order."""
    slots = [host for host, count in hosts for _ in range(count)]
    if num_workers > len(slots):
        raise ValueError('{} workers but the hosts offer {} slots ({}); add slots as host:N'
                         .format(num_workers, len(slots), ', '.join(
                             f'{h}:{c}' for h, c in hosts)))
    return slots[:num_workers]


def _default_threads(workers_here):
    """OMP threads per worker so the workers of one host share its cores."""
    return str(max(1, (os.cpu_count() or 1) // max(workers_here, 1)))


def kvstore_cluster(command: Sequence[str], num_workers: int, num_servers: int = 1,
                    hosts: Sequence[tuple[str, int]] | None = None, port: int | None = None,
                    interface: str | None = None, python: str = sys.executable,
                    scheduler_host: str | None = None) -> list[ProcessSpec]:
    """ProcessSpecs of a parameter-server cluster: scheduler, servers, then workers.

    hosts None: everything on 127.0.0.1 (interface 'lo' unless given). Otherwise the scheduler
    runs on `scheduler_host` (default the first host), servers round-robin over the hosts."""
    local = hosts is None
    hosts = hosts or [('127.0.0.1', num_workers)]
    worker_hosts = place_workers(hosts, num_workers)
    root = scheduler_host or hosts[0][0]
    port = port or (free_port(root) if local else 9091)
    interface = interface or ('lo' if local else None)
    common = dict(DMLC_PS_ROOT_URI=root, DMLC_PS_ROOT_PORT=str(port),
                  DMLC_NUM_SERVER=str(num_servers), DMLC_NUM_WORKER=str(num_workers))
    if interface:
        common['DMLC_INTERFACE'] = interface

    def spec(name, role, host, argv, threads):
        env = dict(common, DMLC_ROLE=role, DMLC_NODE_HOST=host)
        if threads:
            env['OMP_NUM_THREADS'] = threads
        return ProcessSpec(name, argv, env, None if local else host, role == 'worker')
    specs = [spec('scheduler', 'scheduler', root, [python] + SERVER_COMMAND, '1')]
    for index in range(num_servers):
        host = hosts[index % len(hosts)][0]
        specs.append(spec(f'server {index}', 'server', host, [python] + SERVER_COMMAND,
                          '1'))
    for index, host in enumerate(worker_hosts):
        # this machine: share its cores among its workers; other hosts: only an explicit value
        threads = os.environ.get('OMP_NUM_THREADS') or (
            _default_threads(worker_hosts.count(host)) if local else None)
        specs.append(spec(f'worker {index}', 'worker', host, list(command), threads))
    return specs


class HorovodRendezvous:
    """Horovod's gloo rendezvous HTTP server on 127.0.0.1, run inside the launcher."""

    def __init__(self, num_workers: int, interface: str = 'lo') -> None:
        try:
            from horovod.runner.common.util.hosts import get_host_assignments, parse_hosts \
                as hvd_hosts
            from horovod.runner.http.http_server import RendezvousHandler, RendezvousHTTPServer
        except ImportError as err:
            raise SystemExit(f'launch --backend horovod: horovod is not installed ({err}); build '
                             f'it '
                             f'with: {HOROVOD_INSTALL}') from None
        self.slots = get_host_assignments(hvd_hosts(f'localhost:{num_workers}'),
                                          num_workers)
        # horovod's own RendezvousServer listens on every interface; this one on loopback only
        self.httpd = RendezvousHTTPServer(('127.0.0.1', 0), RendezvousHandler, 0)
        self.port = self.httpd.server_address[1]
        self.httpd.init(self.slots)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.interface = interface

    def specs(self, command: Sequence[str]) -> list[ProcessSpec]:
        """One ProcessSpec per rank with the HOROVOD_* environment of gloo on loopback."""
        specs = []
        for slot in self.slots:
            env = dict(HOROVOD_GLOO_RENDEZVOUS_ADDR='127.0.0.1',
                       HOROVOD_GLOO_RENDEZVOUS_PORT=str(self.port), HOROVOD_CONTROLLER='gloo',
                       HOROVOD_CPU_OPERATIONS='gloo', HOROVOD_GLOO_IFACE=self.interface,
                       HOROVOD_HOSTNAME=slot.hostname, HOROVOD_RANK=str(slot.rank),
                       HOROVOD_SIZE=str(slot.size), HOROVOD_LOCAL_RANK=str(slot.local_rank),
                       HOROVOD_LOCAL_SIZE=str(slot.local_size),
                       HOROVOD_CROSS_RANK=str(slot.cross_rank),
                       HOROVOD_CROSS_SIZE=str(slot.cross_size),
                       OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS') or
                       _default_threads(len(self.slots)))
            specs.append(ProcessSpec(f'worker {slot.rank}', list(command), env))
        return specs

    def stop(self) -> None:
        """Shut the rendezvous HTTP server down."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def horovodrun_command(command: Sequence[str], num_workers: int,
                       hosts: Sequence[tuple[str, int]], interface: str | None = None
                       ) -> list[str]:
    """`horovodrun --gloo` for several hosts (it starts the ranks over ssh)."""
    argv = ['horovodrun', '--gloo', '-np', str(num_workers), '-H',
            ','.join(f'{h}:{c}' for h, c in hosts)]
    if interface:
        argv += ['--network-interface', interface]
    return argv + list(command)


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without leaky variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES}
    env.update(extra)
    return env


def remote_command(spec: ProcessSpec, cwd: str) -> str:
    """The shell command that runs `spec` on its host (cd, environment, exec)."""
    env = ' '.join(f'{k}={shlex.quote(v)}' for k, v in sorted(spec.env.items()))
    return f'cd {shlex.quote(cwd)} && exec env {env} {shlex.join(spec.argv)}'


def ssh_spec(spec: ProcessSpec, cwd: str) -> ProcessSpec:
    """Wrap a remote spec in ssh; -tt gives the remote side a terminal, so it is hung up (and
    stops) when the ssh client is stopped."""
    argv = ['ssh', '-tt', '-o', 'BatchMode=yes', spec.host, remote_command(spec, cwd)]
    return ProcessSpec(spec.name, argv, {}, None, spec.is_worker)


def print_commands(specs: Sequence[ProcessSpec], cwd: str, out: TextIO | None = None
                   ) -> None:
    """Print what to run on each host (start the scheduler and servers first)."""
    out = out or sys.stdout
    for host in dict.fromkeys(s.host for s in specs):
        names = ', '.join(s.name for s in specs if s.host == host)
        print(f'# on {host}: {names}', file=out)
        for spec in specs:
            if spec.host == host:
                print(remote_command(spec, cwd) + ' &', file=out)
        print('wait', file=out)


def _die_with_parent():
    """In the child: ask Linux to SIGKILL it when the launcher dies (no orphans)."""
    try:
        _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except AttributeError:  # not Linux
        pass


def describe_exit(code: int) -> str:
    """A process's return code in words."""
    if code < 0:
        try:
            return f'was killed by {signal.Signals(-code).name}'
        except ValueError:
            return f'was killed by signal {-code}'
    return f'exited with code {code}'


class Supervisor:
    """Run ProcessSpecs; stop all of them when one fails, on a signal or at the timeout.

    grace: seconds between SIGTERM and SIGKILL when stopping. linger: seconds the scheduler and
    servers get to exit by themselves after all workers succeeded."""

    def __init__(self, specs: Sequence[ProcessSpec], grace: float = 5.0, linger: float = 30.0,
                 out: TextIO | None = None) -> None:
        self.specs, self.grace, self.linger = specs, grace, linger
        self.out = out or sys.stderr
        self.procs = []  # (spec, Popen)

    def _say(self, message):
        print('launch: ' + message, file=self.out, flush=True)

    def start(self) -> None:
        """Start every process (each in its own session)."""
        for spec in self.specs:
            proc = subprocess.Popen(spec.argv, env=child_environment(spec.env),
                                    start_new_session=True, preexec_fn=_die_with_parent)
            self.procs.append((spec, proc))
            self._say(f'started {spec.name} (pid {proc.pid}): {shlex.join(spec.argv)}')

    def run(self, timeout: float | None = None) -> int:
        """Start, watch and stop the cluster -> exit code (0 when every worker succeeded)."""
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            self.start()
            return self._watch(timeout)
        except Stop as stop:
            self._say(f'{stop.reason}; stopping {len(self._running())} processes')
            return stop.code
        finally:
            for sig in previous:  # a second Ctrl-C must not interrupt the clean-up
                signal.signal(sig, signal.SIG_IGN)
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @staticmethod
    def _on_signal(signum, _frame):
        code = EXIT_SIGINT if signum == signal.SIGINT else 128 + signum
        raise Stop(code, f'received {signal.Signals(signum).name}')

    def _running(self):
        return [(spec, proc) for spec, proc in self.procs if proc.poll() is None]

    def _watch(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        workers_done_at, left_early = None, {}
        while True:
            now = time.monotonic()
            for spec, proc in self.procs:
                code = proc.poll()
                if code is None or (code == 0 and spec.is_worker):
                    continue
                if code == 0 and (workers_done_at is not None or
                                  now - left_early.setdefault(spec.name, now) < self.linger):
                    # servers stop when the workers finalize, possibly before the last worker
                    # process has exited: only a server gone long before the workers is a fault
                    continue
                others = len(self._running())
                why = describe_exit(code) if code else \
                    f'exited while the workers kept running for {self.linger:.0f} s'
                then = f'stopping the other {others} processes' if others else \
                    'no other process is left'
                self._say(f'{spec.name} (pid {proc.pid}) {why}; {then}')
                return code if code > 0 else (128 - code if code < 0 else 1)
            running = self._running()
            if workers_done_at is None and not any(s.is_worker for s, _ in running):
                workers_done_at = time.monotonic()
            if workers_done_at is not None:
                if not running:
                    return 0
                if time.monotonic() - workers_done_at > self.linger:
                    self._say('all workers finished; {} did not exit within {:.0f} s: stopping'
                              ' them'.format(', '.join(s.name for s, _ in running),
                                             self.linger))
                    return 0
            if deadline is not None and time.monotonic() > deadline:
                self._say(f'timeout after {timeout:.0f} s; stopping {len(running)} processes')
                return EXIT_TIMEOUT
            time.sleep(0.1)

    def stop_all(self) -> None:
        """SIGTERM every running process group, SIGKILL what is left after `grace` seconds."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            running = self._running()
            if not running:
                return
            for _, proc in running:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + (self.grace if sig == signal.SIGTERM else 10.0)
            while self._running() and time.monotonic() < end:
                time.sleep(0.05)
        for spec, proc in self._running():
            self._say(f'{spec.name} (pid {proc.pid}) did not stop')


# the zoo scripts, which train on their own unless told --comm-backend
ZOO_SCRIPTS = ('finetune_classifier.py', 'finetune_squad.py', 'pretrain.py')


def check_worker_joins(command: Sequence[str], backend: str) -> None:
    """Refuse a zoo-script worker command without --comm-backend (or with device): every worker
    would train an independent copy into the same --output-dir."""
    script = next((os.path.basename(a) for a in command if os.path.basename(a) in ZOO_SCRIPTS),
                  None)
    if script is None:
        return
    chosen = None
    for i, arg in enumerate(command):
        if arg == '--comm-backend' and i + 1 < len(command):
            chosen = command[i + 1]
        elif arg.startswith('--comm-backend='):
            chosen = arg.split('=', 1)[1]
    if chosen in (None, 'device'):
        raise SystemExit(f'launch: the worker command runs {script} with --comm-backend '
                         f'{chosen or "device (the default)"}: each worker would train its own '
                         f'copy into the same --output-dir; add --comm-backend {backend} to it')


def build_parser() -> argparse.ArgumentParser:
    """The command line of `scripts/launch.py` / `gluonbert launch`."""
    p = argparse.ArgumentParser(
        prog='launch.py', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage='%(prog)s --backend {dist_sync,...,horovod} -n N [options] -- command ...')
    p.add_argument('--backend', required=True, choices=BACKENDS,
                   help='the --comm-backend the workers use')
    p.add_argument('-n', '--num-workers', type=int, required=True, help='worker processes')
    p.add_argument('-s', '--num-servers', type=int,
                   help='parameter servers (kvstore; default 1, or one per host)')
    p.add_argument('-H', '--hosts', help='several hosts: "host1:slots,host2:slots"')
    p.add_argument('--hostfile', help='several hosts: one "host[:slots]" per line')
    p.add_argument('--launcher', choices=['local', 'ssh', 'print'],
                   help='local (default without hosts), ssh (default with hosts: run each '
                        'process over ssh), print (show the per-host commands)')
    p.add_argument('--scheduler-host', help='kvstore: the scheduler\'s address (default: the '
                                            'first host)')
    p.add_argument('--port', type=int, help='kvstore: scheduler port (default: a free one)')
    p.add_argument('--interface', help='network interface (default lo on this machine)')
    p.add_argument('--timeout', type=float, help='stop everything after this many seconds')
    p.add_argument('--grace', type=float, default=5.0,
                   help='seconds between SIGTERM and SIGKILL when stopping (default 5)')
    p.add_argument('command', nargs=argparse.REMAINDER, help='the worker command, after --')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, launch, return the exit code."""
    args = build_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        raise SystemExit('launch: no worker command; put it after --')
    if args.num_workers < 1:
        raise SystemExit('launch: --num-workers must be >= 1')
    check_worker_joins(command, args.backend)
    hosts = parse_hosts(args.hosts, args.hostfile) or None
    mode = args.launcher or ('ssh' if hosts else 'local')
    if mode != 'local' and not hosts:
        raise SystemExit(f'launch: --launcher {mode} needs --hosts or --hostfile')
    cwd = os.getcwd()
    if args.backend == 'horovod':
        return _launch_horovod(args, command, hosts, mode)
    servers = args.num_servers or (len(hosts) if hosts else 1)
    specs = kvstore_cluster(command, args.num_workers, servers, hosts if mode != 'local' else
                            None, args.port, args.interface,
                            scheduler_host=args.scheduler_host)
    if mode == 'print':
        print_commands(specs, cwd)
        return 0
    if mode == 'ssh':
        specs = [ssh_spec(s, cwd) for s in specs]
    return Supervisor(specs, grace=args.grace).run(args.timeout)


def _launch_horovod(args, command, hosts, mode):
    if mode != 'local':
        argv = horovodrun_command(command, args.num_workers, hosts, args.interface)
        if mode == 'print':
            print(shlex.join(argv))
            return 0
        return Supervisor([ProcessSpec('horovodrun', argv, {})], grace=args.grace).run(
            args.timeout)
    rendezvous = HorovodRendezvous(args.num_workers, args.interface or 'lo')
    try:
        return Supervisor(rendezvous.specs(command), grace=args.grace).run(args.timeout)
    finally:
        rendezvous.stop()


if __name__ == '__main__':
    sys.exit(main())
