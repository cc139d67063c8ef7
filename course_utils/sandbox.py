"""Lança um processo (o kernel de uma entrega) com limites de recursos e, onde o Linux deixa, isolado.

    python -m course_utils.sandbox --memory-mb 4096 --cpu-s 600 --isolate \\
        --hide /caminho/entregas --share /tmp/job/ipc --scratch /tmp/job/kernel -- python -m ipykernel_launcher -f ...
    python -m course_utils.sandbox --probe     # diz se o isolamento por namespaces funciona nesta máquina

Limites (sempre, via `resource.setrlimit` no processo filho): memória virtual (RLIMIT_AS), tempo de CPU
(RLIMIT_CPU), tamanho de arquivo (RLIMIT_FSIZE) e nenhum core dump.

Isolamento (`--isolate`, só Linux, com namespaces de usuário ou como root), feito com `unshare(2)`:
- rede: um namespace de rede novo, só com a interface de loopback (dele): localhost funciona lá dentro (um
  servidor de teste, por exemplo), mas nenhuma conexão sai nem alcança os serviços locais da máquina;
- arquivos: um namespace de montagem próprio em que as pastas de `--hide` viram um tmpfs vazio (as outras
  entregas, o boletim, os testes ocultos), as de `--read-only` ficam só leitura (o código do curso, o ambiente
  Python, o cache do modelo) e o diretório de trabalho (`--scratch`) é um tmpfs novo, com tamanho limitado, que
  some com o processo; `--share` mantém visível uma pasta real (os sockets IPC do kernel);
- processos: um namespace de PID com /proc próprio: o kernel não enxerga nem sinaliza os outros processos, e
  quando ele termina tudo o que ele criou termina junto.

Sem namespaces (macOS, containers que os bloqueiam), só os limites valem: quem chama deve avisar o professor.
Este módulo não importa nada pesado: ele roda antes de cada kernel.
"""

import argparse
import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 0x20, 0x400, 0x800, 0x1000, 0x4000
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
PR_SET_PDEATHSIG = 1
# flags de statvfs -> flags de mount que precisam ser mantidas ao remontar (montagens "travadas")
_LOCKED_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
                 os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME, os.ST_RELATIME: MS_RELATIME}

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class IsolationError(OSError):
    """O isolamento pedido não pôde ser montado."""


def _check(rc: int, what: str) -> None:
    if rc != 0:
        errno = ctypes.get_errno()
        raise IsolationError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else os.fsencode(str(s))  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter_namespaces() -> None:
    """Novo namespace de usuário (se possível), de montagem, de rede e de PID para este processo e seus filhos."""
    if _libc is None:
        raise IsolationError(0, "namespaces só existem no Linux")
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID) == 0:
        # dentro do namespace somos "root" (só lá dentro); fora, continuamos sendo o usuário de sempre
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    elif uid == 0:  # sem namespaces de usuário, mas root pode criar os outros
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
    else:
        _check(-1, "unshare (namespaces de usuário desativados?)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nada do que montarmos aqui vaza para fora
    try:
        _loopback_up()
    except OSError:
        pass  # sem localhost lá dentro; o resto do isolamento vale igual


def _loopback_up() -> None:
    """Liga a interface lo do namespace de rede novo: localhost funciona lá dentro, e só lá dentro."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sh22x", b"lo", flags | iff_up))


def _bind_read_only(path: str) -> None:
    _mount(path, path, None, MS_BIND | MS_REC)
    locked = sum(ms for st, ms in _LOCKED_FLAGS.items() if os.statvfs(path).f_flag & st)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked)


def build_filesystem(hide=(), read_only=(), share=(), scratch=None, scratch_mb=1024) -> None:
    """Monta a visão de arquivos do kernel (chame depois de `enter_namespaces`)."""
    share_fds = {path: os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in share}  # antes de esconder
    for path in read_only:
        if os.path.isdir(path):
            _bind_read_only(path)
    for path in hide:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    for path, fd in share_fds.items():
        os.makedirs(path, exist_ok=True)  # se ficou escondida, recria o ponto de montagem no tmpfs
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
        os.close(fd)
    if scratch:
        os.makedirs(scratch, exist_ok=True)
        _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, f"size={scratch_mb}m,mode=700")


def _lower(which, soft, hard=None) -> None:
    """Baixa um limite (nunca acima do limite duro que o processo já tem, o que o setrlimit recusaria)."""
    _, current = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(which, (soft, hard))


def set_limits(memory_mb=None, cpu_s=None, file_mb=None) -> None:
    """Limites do processo atual (herdados pelos filhos); estourar a memória vira MemoryError no Python."""
    _lower(resource.RLIMIT_CORE, 0)
    if memory_mb:
        _lower(resource.RLIMIT_AS, memory_mb * 2**20)
    if cpu_s:
        # o limite "mole" manda SIGXCPU (mata o processo); o "duro", 5 s depois, SIGKILL
        _lower(resource.RLIMIT_CPU, int(cpu_s), int(cpu_s) + 5)
    if file_mb:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # arquivo grande demais vira erro de escrita, não morte
        _lower(resource.RLIMIT_FSIZE, file_mb * 2**20)


def _die_with_parent() -> None:
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _supervise(child: int) -> int:
    """Espera o filho (o PID 1 do namespace); SIGTERM aqui vira SIGKILL lá. Devolve o código de saída."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # o jupyter interrompe o grupo todo; o filho recebe direto
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            return os.waitstatus_to_exitcode(status)
        except InterruptedError:
            continue


def run(command, *, isolate=False, hide=(), read_only=(), share=(), scratch=None, scratch_mb=1024,
        memory_mb=None, cpu_s=None, file_mb=None) -> int:
    """Executa `command` com limites (e isolado, se `isolate`); só volta se o comando terminar."""
    _die_with_parent()
    if not isolate:
        if scratch:
            os.makedirs(scratch, exist_ok=True)
            os.chdir(scratch)
        set_limits(memory_mb, cpu_s, file_mb)
        os.execvp(command[0], command)
    enter_namespaces()
    build_filesystem(hide, read_only, share, scratch, scratch_mb)
    child = os.fork()
    if child:
        return _supervise(child)
    _die_with_parent()
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except IsolationError:
        pass  # alguns containers proíbem um /proc novo; os outros isolamentos continuam valendo
    if scratch:
        os.chdir(scratch)
    set_limits(memory_mb, cpu_s, file_mb)
    os.execvp(command[0], command)


def probe() -> dict:
    """Testa, num processo filho, se o isolamento funciona aqui: {"isolation": "namespaces"|"nenhum", "detail"}."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="sandbox-probe-")
    marker = os.path.join(folder, "visivel")
    _write(marker, "")
    pid = os.fork()
    if pid == 0:
        try:
            enter_namespaces()
            build_filesystem(hide=[folder])
            os._exit(0 if not os.listdir(folder) else 1)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    os.remove(marker)
    os.rmdir(folder)
    if os.waitstatus_to_exitcode(status) == 0:
        return {"isolation": "namespaces", "detail": "rede, arquivos e processos isolados (unshare)"}
    why = "não é Linux" if _libc is None else "o sistema não deixa criar namespaces (unshare)"
    return {"isolation": "nenhum", "detail": why}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Executa um comando com limites de recursos e isolado.")
    parser.add_argument("--probe", action="store_true", help="só testa se o isolamento funciona aqui (JSON)")
    parser.add_argument("--isolate", action="store_true", help="namespaces de rede, montagem e PID (Linux)")
    parser.add_argument("--hide", action="append", default=[], help="pasta que o processo não vê (repetível)")
    parser.add_argument("--read-only", action="append", default=[], help="pasta só leitura (repetível)")
    parser.add_argument("--share", action="append", default=[], help="pasta real que continua visível (repetível)")
    parser.add_argument("--scratch", help="diretório de trabalho (um tmpfs novo quando isolado)")
    parser.add_argument("--scratch-mb", type=int, default=1024, help="tamanho do tmpfs de trabalho")
    parser.add_argument("--memory-mb", type=int, help="memória virtual máxima (RLIMIT_AS)")
    parser.add_argument("--cpu-s", type=int, help="segundos de CPU (RLIMIT_CPU)")
    parser.add_argument("--file-mb", type=int, help="maior arquivo que pode escrever (RLIMIT_FSIZE)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- comando e argumentos")
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(), ensure_ascii=False))
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("falta o comando (depois de --)")
    return run(command, isolate=args.isolate, hide=args.hide, read_only=args.read_only, share=args.share,
               scratch=args.scratch, scratch_mb=args.scratch_mb, memory_mb=args.memory_mb, cpu_s=args.cpu_s,
               file_mb=args.file_mb)


if __name__ == "__main__":
    sys.exit(main())
