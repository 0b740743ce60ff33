"""What this machine's CPU can do: its model name and SIMD flags (read from /proc/cpuinfo)."""


def cpu_flags() -> tuple[str, set[str]]:
    """The CPU's model name and its SIMD flags of interest -> (name, set of flags)."""
    name, flags = 'unknown CPU', set()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name') and name == 'unknown CPU':
                    name = line.split(':', 1)[1].strip()
                elif line.startswith('flags') and not flags:
                    flags = {flag for flag in line.split(':', 1)[1].split()
                             if flag.startswith(('avx', 'amx', 'fma'))}
    except OSError:
        pass
    return name, flags
