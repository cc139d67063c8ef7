"""Lança um processo (o kernel de uma entrega) com limites de recursos e, onde o Linux deixa, isolado.

    python -m course_utils.grader.sandbox --memory-mb 4096 --max-procs 256 --isolate \\
        --hide /caminho/entregas --expose /caminho/pacote --share /tmp/job/ipc --scratch /tmp/job/kernel \\
        -- python -m course_utils.grader.kernel -f ...
    python -m course_utils.grader.sandbox --probe     # o que funciona nesta máquina (JSON)

Limites do processo (sempre, `setrlimit`): memória virtual (RLIMIT_AS), CPU, tamanho de arquivo, nenhum core dump.
Limites da árvore de processos inteira (`--cgroup NOME`): um cgroup próprio com memória e número de processos
(v1, com os controladores memory e pids, ou v2), quando dá para criar um; senão, RLIMIT_NPROC (veja `--probe`).

Isolamento (`--isolate`, só Linux), com `unshare(2)`:
- usuário: como root, o kernel roda com um uid só dele e sem privilégio (o RLIMIT_NPROC vale para ele); sem
  root, num namespace de usuário (o uid de fora é o do professor);
- rede: um namespace novo, só com o loopback dele;
- arquivos: um namespace de montagem em que TUDO fica só leitura; as pastas de `--hide` viram um tmpfs vazio
  (a cópia do curso, a pasta pessoal, as entregas, o boletim, os testes ocultos), as de `--expose` reaparecem só
  leitura por baixo delas (o ambiente Python, a cópia do pacote, o cache do modelo), as de `--share` ficam
  graváveis (os sockets do kernel); o diretório de trabalho (`--scratch`), `/tmp`, `/var/tmp` e `/dev/shm` são
  pastas de UM tmpfs novo de `--scratch-mb` MB, privado, que some com o processo;
- processos: um namespace de PID com /proc próprio: quando o kernel termina, tudo o que ele criou termina junto.

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
UID_BASE = 1_900_000_000  # uids dos kernels (como root): UID_BASE + pid do sandbox, nenhum usuário de verdade
# flags de statvfs -> flags de mount que precisam ser mantidas ao remontar (montagens "travadas")
_LOCKED_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
                 os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME, os.ST_RELATIME: MS_RELATIME}
CGROUP_ROOT = "/sys/fs/cgroup"

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class IsolationError(OSError):
    """O isolamento pedido não pôde ser montado."""


def _check(rc: int, what: str) -> None:
    if rc != 0:
        errno = ctypes.get_errno()
        raise IsolationError(errno, f"{what}: {os.strerror(errno)}")


def _enc(s):
    return None if s is None else os.fsencode(str(s))


def _mount(source, target, fstype, flags, data=None) -> None:
    _check(_libc.mount(_enc(source), _enc(target), _enc(fstype), ctypes.c_ulong(flags), _enc(data)),
           f"mount {target}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


# ----------------------------------------------------------------------- cgroup: a árvore de processos inteira

def _own_cgroups() -> dict:
    """{controlador: caminho} do processo atual, de /proc/self/cgroup ("" é o cgroup v2 unificado)."""
    found = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for name in controllers.split(",") if controllers else [""]:
                    found[name] = path
    except OSError:
        pass
    return found


def _cgroup_v1(name: str, memory_mb, max_procs) -> list:
    own = _own_cgroups()
    made = []
    for controller, settings in (("memory", {"memory.limit_in_bytes": memory_mb and memory_mb * 2**20,
                                             "memory.memsw.limit_in_bytes": memory_mb and memory_mb * 2**20,
                                             "memory.swappiness": 0}),
                                 ("pids", {"pids.max": max_procs})):
        base = os.path.join(CGROUP_ROOT, controller)
        if controller not in own or not os.path.isdir(base):
            raise OSError(f"sem o controlador {controller} do cgroup v1")
        path = os.path.join(base + own[controller], name)
        os.makedirs(path, exist_ok=True)
        made.append(path)
        for file, value in settings.items():
            target = os.path.join(path, file)
            if value is not None and (os.path.exists(target) or not file.startswith("memory.memsw")):
                try:
                    _write(target, str(value))
                except OSError:
                    if file != "memory.swappiness":
                        raise
    return made


def _cgroup_v2(name: str, memory_mb, max_procs) -> list:
    base = CGROUP_ROOT + _own_cgroups().get("", "/")
    path = os.path.join(base, name)
    os.makedirs(path, exist_ok=True)
    if not (os.path.exists(os.path.join(path, "memory.max")) and os.path.exists(os.path.join(path, "pids.max"))):
        os.rmdir(path)
        _write(os.path.join(base, "cgroup.subtree_control"), "+memory +pids")  # EBUSY se o pai tem processos
        os.makedirs(path, exist_ok=True)
    if memory_mb:
        _write(os.path.join(path, "memory.max"), str(memory_mb * 2**20))
        if os.path.exists(os.path.join(path, "memory.swap.max")):
            _write(os.path.join(path, "memory.swap.max"), "0")
    if max_procs:
        _write(os.path.join(path, "pids.max"), str(max_procs))
    return [path]


def create_cgroup(name: str, memory_mb=None, max_procs=None) -> dict:
    """Cria o cgroup da entrega e põe este processo nele (os filhos herdam). {"cgroup": "v1"|"v2"|None, ...}."""
    unified = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
    attempts = [("v2", _cgroup_v2)] if unified else [("v1", _cgroup_v1)]
    if not unified and os.path.exists(os.path.join(CGROUP_ROOT, "unified", "cgroup.controllers")):
        attempts.append(("v2", lambda *a: _cgroup_v2_hybrid(*a)))
    why = []
    for version, make in attempts:
        paths = []
        try:
            paths = make(name, memory_mb, max_procs)
            for path in paths:
                _write(os.path.join(path, "cgroup.procs"), str(os.getpid()))
            return {"cgroup": version, "paths": paths}
        except OSError as exc:
            remove_cgroup(paths)
            why.append(f"{version}: {exc.strerror or exc}")
    return {"cgroup": None, "why": "; ".join(why) or "sem cgroup"}


def _cgroup_v2_hybrid(name, memory_mb, max_procs):
    global CGROUP_ROOT
    saved, CGROUP_ROOT = CGROUP_ROOT, os.path.join(CGROUP_ROOT, "unified")
    try:
        return _cgroup_v2(name, memory_mb, max_procs)
    finally:
        CGROUP_ROOT = saved


def cgroup_events(paths) -> dict:
    """O que o cgroup registrou: vezes que bateu no limite de memória e mortes por falta de memória."""
    events = {}
    for path in paths or []:
        for file in ("memory.failcnt", "memory.events"):
            try:
                with open(os.path.join(path, file)) as f:
                    text = f.read()
            except OSError:
                continue
            if file == "memory.failcnt":
                events["memory_hits"] = int(text.strip() or 0)
            else:
                for line in text.splitlines():
                    key, _, value = line.partition(" ")
                    if key in ("max", "oom_kill"):
                        events["memory_hits" if key == "max" else "oom_kills"] = int(value)
        try:
            with open(os.path.join(path, "memory.oom_control")) as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        events["oom_kills"] = int(line.split()[1])
        except OSError:
            pass
    return events


def remove_cgroup(paths) -> None:
    """Mata o que restou no cgroup e o apaga (chamado pelo supervisor e, por garantia, pelo corretor)."""
    import time

    for path in paths or []:
        for _ in range(50):
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                break
            for pid in pids:
                if pid == os.getpid():
                    try:
                        _write(os.path.join(os.path.dirname(path), "cgroup.procs"), str(pid))
                    except OSError:
                        pass
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.05)


# ----------------------------------------------------------------------- namespaces e a visão de arquivos

def enter_namespaces() -> str:
    """Namespaces novos de montagem, rede e PID (e de usuário, se não for root). Devolve como o uid ficou."""
    if _libc is None:
        raise IsolationError(0, "namespaces só existem no Linux")
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
        mode = "uid próprio, sem privilégio"
    else:
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID),
               "unshare (namespaces de usuário desativados?)")
        # dentro do namespace somos "root" (só lá dentro); fora, continuamos sendo o usuário de sempre
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
        mode = "namespace de usuário (fora dele, o uid do professor)"
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nada do que montarmos aqui vaza para fora
    try:
        _loopback_up()
    except OSError:
        pass  # sem localhost lá dentro; o resto do isolamento vale igual
    return mode


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


def _mount_points() -> list:
    """Os pontos de montagem deste namespace (de /proc/self/mountinfo, com os escapes \\040 desfeitos)."""
    points = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            raw = line.split(b" ")[4]
            points.append(os.fsdecode(_unescape(raw)))
    return points


def _unescape(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i:i + 1] == b"\\" and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def _read_only(path: str) -> None:
    """Deixa a montagem em `path` só leitura (MS_BIND: só esta montagem, neste namespace; nunca o disco)."""
    locked = sum(ms for st, ms in _LOCKED_FLAGS.items() if os.statvfs(path).f_flag & st)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked)


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def build_filesystem(hide=(), expose=(), share=(), scratch=None, scratch_mb=1024, owner=None) -> dict:
    """Monta a visão de arquivos do kernel (chame depois de `enter_namespaces`). Devolve um resumo."""
    hide = [os.path.realpath(p) for p in hide if os.path.isdir(p)]
    expose = [os.path.realpath(p) for p in expose if os.path.isdir(p)]
    share = [os.path.realpath(p) for p in share if os.path.isdir(p)]
    keep = {p: os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in expose + share}  # antes de esconder
    binds = {}  # destino -> (fd, gravável)
    if scratch:
        scratch = os.path.realpath(scratch)
        for target, fd in _private_tmpfs(scratch, scratch_mb, owner).items():
            binds[target] = (fd, True)
    covered = hide + list(binds)
    for path in expose:
        if any(_under(path, c) for c in covered):
            binds[path] = (keep[path], False)
    for path in share:
        binds[path] = (keep[path], True)
    steps = [(p, "hide") for p in hide] + [(p, "bind") for p in binds]
    for path, kind in sorted(steps, key=lambda s: (_depth(s[0]), s[1] == "bind")):
        if kind == "hide":
            if os.path.isdir(path):  # senão, já sumiu debaixo de outra montagem
                _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        else:
            if not os.path.isdir(path):
                os.makedirs(path)  # escondida: recria o ponto de montagem no tmpfs de cima
            _mount(f"/proc/self/fd/{binds[path][0]}", path, None, MS_BIND | MS_REC)
    for fd in set(keep.values()) | {fd for fd, _ in binds.values()}:
        os.close(fd)
    writable = {p for p, (_, rw) in binds.items() if rw}
    failed = []
    for point in dict.fromkeys(_mount_points()):
        if point in writable:
            continue
        try:
            _read_only(point)
        except OSError:
            failed.append(point)  # escondida por outra montagem ou de um tipo que não remonta
    return {"hidden": hide, "exposed": sorted(p for p, (_, rw) in binds.items() if not rw),
            "writable": sorted(writable), "not_read_only": failed}


def _private_tmpfs(scratch: str, scratch_mb: int, owner) -> dict:
    """Um tmpfs de `scratch_mb` MB com as pastas de trabalho, /tmp, /var/tmp e /dev/shm (o total é limitado)."""
    os.makedirs(scratch, exist_ok=True)
    _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, f"size={scratch_mb}m,mode=755")
    fds = {}
    for sub, target in (("trabalho", scratch), ("tmp", "/tmp"), ("var_tmp", "/var/tmp"), ("shm", "/dev/shm")):
        folder = os.path.join(scratch, sub)
        os.mkdir(folder)
        if sub == "trabalho":
            os.chmod(folder, 0o700)
            if owner:
                os.chown(folder, owner, owner)
        else:
            os.chmod(folder, 0o1777)
        fds[target] = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    return fds  # a pasta "trabalho" é montada por cima do próprio tmpfs: a raiz dele fica inalcançável


# ----------------------------------------------------------------------- limites do processo e o uid

def _lower(which, soft, hard=None) -> None:
    """Baixa um limite (nunca acima do limite duro que o processo já tem, o que o setrlimit recusaria)."""
    _, current = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(which, (soft, hard))


def set_limits(memory_mb=None, cpu_s=None, file_mb=None, nproc=None) -> None:
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
    if nproc:
        _lower(resource.RLIMIT_NPROC, nproc)


def _user_processes() -> int:
    """Quantos processos (e threads) o usuário atual já tem: o RLIMIT_NPROC conta todos eles."""
    uid, count = os.getuid(), 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                continue
    return count


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


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


def _open_channels(key_file, channel, report) -> dict:
    """Os descritores que o kernel herda (chave, canal) e o do relatório do sandbox, abertos antes de tudo."""
    fds = {}
    if key_file:
        fds["key"] = os.open(key_file, os.O_RDONLY)
        os.unlink(key_file)  # a chave só existe neste descritor (o kernel o lê e fecha antes das células)
    if channel:
        fds["channel"] = os.open(channel, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    for fd in fds.values():
        os.set_inheritable(fd, True)
    if report:
        fds["report"] = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return fds


def _finish(command, fds: dict, applied: dict) -> None:
    """Grava o que foi aplicado (num arquivo que o kernel não vê) e executa o comando."""
    if "report" in fds:
        fd = fds.pop("report")
        os.write(fd, json.dumps(applied, ensure_ascii=False).encode())
        os.close(fd)
    command = [part.replace("{key_fd}", str(fds.get("key", -1))).replace("{channel_fd}", str(fds.get("channel", -1)))
               for part in command]
    os.execvp(command[0], command)


def run(command, *, isolate=False, hide=(), expose=(), share=(), scratch=None, scratch_mb=1024,
        memory_mb=None, cpu_s=None, file_mb=None, max_procs=None, cgroup=None, key_file=None, channel=None,
        report=None) -> int:
    """Executa `command` com limites (e isolado, se `isolate`); só volta se o comando terminar."""
    _die_with_parent()
    fds = _open_channels(key_file, channel, report)
    applied = {"memory_mb": memory_mb, "cpu_s": cpu_s, "file_mb": file_mb, "isolation": "nenhum",
               **(create_cgroup(cgroup, memory_mb, max_procs) if cgroup else {"cgroup": None, "why": "não pedido"})}
    root = os.getuid() == 0
    nproc = None
    if max_procs and not applied["cgroup"]:  # sem cgroup: RLIMIT_NPROC (por uid: conta os processos do usuário)
        nproc = max_procs if (root and isolate) else (None if root else _user_processes() + max_procs)
    applied["nproc"] = nproc
    if not isolate:
        if scratch:
            os.makedirs(scratch, exist_ok=True)
            os.chdir(scratch)
        set_limits(memory_mb, cpu_s, file_mb, nproc)
        _finish(command, fds, applied)
    kernel_uid = UID_BASE + os.getpid() if root else None
    applied["uid"] = enter_namespaces()
    applied["files"] = build_filesystem(hide, expose, share, scratch, scratch_mb, kernel_uid)
    if kernel_uid:
        for folder in share:  # os sockets e o arquivo de conexão do kernel (0600) passam a ser do uid dele
            for name in [""] + os.listdir(folder):
                os.chown(os.path.join(folder, name), kernel_uid, kernel_uid)
    child = os.fork()
    if child:
        for fd in fds.values():
            os.close(fd)
        return _supervise(child)  # o cgroup é apagado por quem lançou o sandbox (aqui /sys é só leitura)
    _die_with_parent()
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except IsolationError:
        pass  # alguns containers proíbem um /proc novo; os outros isolamentos continuam valendo
    if scratch:
        os.chdir(scratch)
    set_limits(memory_mb, cpu_s, file_mb, max_procs if kernel_uid else nproc)
    if kernel_uid:
        _drop_privileges(kernel_uid)
        applied["nproc"] = max_procs
    applied["isolation"] = "namespaces"
    _finish(command, fds, applied)


def probe() -> dict:
    """Testa, num processo filho, o que funciona aqui: namespaces (com tudo só leitura) e cgroup."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="sandbox-probe-")
    marker = os.path.join(folder, "visivel")
    _write(marker, "")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            info = {"cgroup": create_cgroup(f"curso-sonda-{os.getpid()}", 64, 64)}
            remove_cgroup(info["cgroup"].get("paths"))
            info["uid"] = enter_namespaces()
            build_filesystem(hide=[folder])
            info["ok"] = not os.listdir(folder)
        except BaseException as exc:  # noqa: BLE001
            info = {**locals().get("info", {}), "ok": False, "why": str(exc)[:200]}
        os.write(write, json.dumps(info).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        raw = f.read()
    os.waitpid(pid, 0)
    os.remove(marker)
    os.rmdir(folder)
    try:
        info = json.loads(raw)
    except ValueError:
        info = {"ok": False}
    cgroup = info.get("cgroup") or {"cgroup": None, "why": "?"}
    result = {"cgroup": cgroup.get("cgroup"), "cgroup_detail": cgroup.get("why", "")}
    if info.get("ok"):
        return {**result, "isolation": "namespaces", "uid": info.get("uid"),
                "detail": "rede, arquivos (tudo só leitura) e processos isolados (unshare)"}
    why = "não é Linux" if _libc is None else "o sistema não deixa criar namespaces (unshare)"
    return {**result, "isolation": "nenhum", "uid": None, "detail": why}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Executa um comando com limites de recursos e isolado.")
    parser.add_argument("--probe", action="store_true", help="só testa o que funciona aqui (JSON)")
    parser.add_argument("--isolate", action="store_true", help="namespaces de rede, montagem e PID (Linux)")
    parser.add_argument("--hide", action="append", default=[], help="pasta que o processo não vê (repetível)")
    parser.add_argument("--expose", action="append", default=[], help="pasta só leitura visível (repetível)")
    parser.add_argument("--read-only", action="append", default=[], dest="expose", help=argparse.SUPPRESS)
    parser.add_argument("--share", action="append", default=[], help="pasta real gravável (repetível)")
    parser.add_argument("--scratch", help="diretório de trabalho (com /tmp, /var/tmp e /dev/shm num tmpfs novo)")
    parser.add_argument("--scratch-mb", type=int, default=1024, help="tamanho total desse tmpfs")
    parser.add_argument("--memory-mb", type=int, help="memória: por processo (RLIMIT_AS) e da árvore (cgroup)")
    parser.add_argument("--max-procs", type=int, help="processos e threads da árvore (cgroup pids ou RLIMIT_NPROC)")
    parser.add_argument("--cgroup", help="nome do cgroup da entrega (sem ele, nenhum cgroup)")
    parser.add_argument("--cpu-s", type=int, help="segundos de CPU (RLIMIT_CPU)")
    parser.add_argument("--file-mb", type=int, help="maior arquivo que pode escrever (RLIMIT_FSIZE)")
    parser.add_argument("--key-file", help="arquivo da chave da coleta (aberto e apagado; fd em {key_fd})")
    parser.add_argument("--channel", help="arquivo do canal da coleta (fd em {channel_fd})")
    parser.add_argument("--report", help="onde gravar, em JSON, os limites e o isolamento aplicados")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- comando e argumentos")
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(), ensure_ascii=False))
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("falta o comando (depois de --)")
    return run(command, isolate=args.isolate, hide=args.hide, expose=args.expose, share=args.share,
               scratch=args.scratch, scratch_mb=args.scratch_mb, memory_mb=args.memory_mb, cpu_s=args.cpu_s,
               file_mb=args.file_mb, max_procs=args.max_procs, cgroup=args.cgroup, key_file=args.key_file,
               channel=args.channel, report=args.report)


if __name__ == "__main__":
    sys.exit(main())
