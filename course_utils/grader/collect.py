"""A coleta: a única parte do corretor que roda no kernel do aluno. Não importa `judge` nem `report`.

`kernel.py` chama `arm(chave, fd)` ANTES de qualquer código do aluno: aqui são guardadas cópias próprias de tudo
o que a coleta usa (estas funções e as de `wire`, com um dicionário de builtins copiado na hora), o HMAC já com a
chave e o `os.write` do descritor do canal. Trocar depois `IPython.display.display`, `json`, builtins ou as funções
de `course_utils` no kernel não muda o que a coleta publica. A célula injetada chama `collect(...)`: se o aluno
trocar essa função ou o módulo, a coleta autêntica não sai, e o corretor marca `coleta forjada`.

Nada aqui decide se a resposta está certa: o corretor julga fora deste processo.
"""

import builtins
import importlib
import json
import marshal
import os
import sys
import threading
import types

from . import wire

# guardados na importação (o lançador importa este módulo antes de qualquer célula do aluno)
_json_loads, _marshal_dumps, _write = json.loads, marshal.dumps, os.write
_setprofile, _getprofile, _import_module = sys.setprofile, sys.getprofile, importlib.import_module
_thread_setprofile, _modules = threading.setprofile, sys.modules
_C_SWITCHES = (sys.setprofile, sys.settrace)                           # funções em C: evento "c_call"
_PY_SWITCHES = {f.__code__: "threading." + f.__name__ for f in (threading.setprofile, threading.settrace)}

_state = {"armed": None}


class _CallTimeout(Exception):
    pass


def _guarded(fn, timeout_s: float) -> dict:
    """fn() com tempo máximo (SIGALRM, na thread principal); exceções viram {"error": [tipo, mensagem]}."""
    import signal

    use_alarm = threading.current_thread() is threading.main_thread() and timeout_s
    if use_alarm:
        def _raise(*_):
            raise _CallTimeout(f"passou de {timeout_s:g} s")
        previous = signal.signal(signal.SIGALRM, _raise)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return fn()
    except BaseException as exc:  # noqa: BLE001 - o código do aluno pode levantar qualquer coisa
        name = "TempoEsgotado" if isinstance(exc, _CallTimeout) else type(exc).__name__
        try:
            message = str(exc)[:300]
        except BaseException:  # noqa: BLE001
            message = ""
        return {"error": [name, message]}
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _forbidden_codes(targets) -> tuple:
    """{código: nome} das funções proibidas ("módulo:Nome.qualificado"; uma classe vale pelos seus métodos) e os nomes
    das que não são o código do próprio módulo (trocadas pelo aluno antes da coleta)."""
    codes, replaced = dict(_PY_SWITCHES), []
    for target in targets:
        module_name, _, qualname = target.partition(":")
        try:
            obj = _import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except Exception:  # noqa: BLE001 - a biblioteca pode não existir nesta versão: nada a vigiar
            continue
        owner = getattr(obj, "__module__", None) or ""
        home = getattr(_modules.get(owner), "__file__", None)
        if owner.partition(".")[0] != module_name.partition(".")[0]:
            home = None   # definida fora da biblioteca que a exporta
        functions = [v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
                     for v in (vars(obj).values() if isinstance(obj, type) else [obj])]
        found = []
        for f in functions:
            while hasattr(f, "__wrapped__"):   # o código de um decorador é compartilhado: vale o de dentro
                f = f.__wrapped__
            if isinstance(getattr(f, "__code__", None), types.CodeType):
                found.append(f.__code__)
        if not found or home is None or any(c.co_filename != home for c in found):
            replaced.append(qualname)  # não é o código do módulo que o define: trocado antes da coleta
        todo = list(found)
        while todo:
            c = todo.pop()
            codes[c] = qualname
            todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return codes, replaced


def _watched(fn, targets):
    """fn() anotando (sys.setprofile) se alguma função proibida rodou; quem desliga a vigia conta como quem delegou."""
    codes, replaced = _forbidden_codes(targets)
    if replaced:
        return {"delegated": replaced}
    called, switches, own = set(), _C_SWITCHES, _watched.__code__   # a própria vigia religa o perfil no fim

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            called.add(codes[frame.f_code])
        elif event == "c_call" and frame.f_code is not own and (arg is switches[0] or arg is switches[1]):
            called.add("sys." + arg.__name__)

    previous = _getprofile()
    _thread_setprofile(profile)   # threads que a função do aluno abrir também são vigiadas
    _setprofile(profile)
    try:
        result = fn()
    finally:
        _setprofile(previous)
        _thread_setprofile(None)
    return {"delegated": sorted(called)} if called else result


def _answer_data(namespace: dict, answer: str, cases_json, call_timeout_s: float) -> dict:
    """O dado da resposta: o valor (encode) ou a saída da função em cada entrada oculta."""
    if answer not in namespace:
        return {"missing": True}
    if cases_json is None:
        return _guarded(lambda: {"value": encode(namespace[answer])}, call_timeout_s)
    function = namespace[answer]
    if not callable(function):
        return {"not_callable": type(function).__name__[:80]}
    results = []
    for case in _json_loads(cases_json):
        def call(case=case):
            output = function(*decode(case["args"], trusted=True), **decode(case["kwargs"], trusted=True))
            return {"output": encode(output)}
        if case.get("forbidden"):
            results.append(_guarded(lambda call=call, case=case: _watched(call, case["forbidden"]), call_timeout_s))
        else:
            results.append(_guarded(call, call_timeout_s))
    return {"results": results}


def _body(nonce, seq, exercise, cases_json, data) -> bytes:
    record = (nonce, seq, exercise, cases_digest(cases_json), data)
    try:
        body = _marshal_dumps(record)
    except (ValueError, TypeError) as exc:
        body = _marshal_dumps(record[:4] + ({"error": ["RespostaIlegível", str(exc)[:200]]},))
    if len(body) > MAX_PAYLOAD_BYTES:
        body = _marshal_dumps(record[:4] + ({"error": ["RespostaGrandeDemais", f"{len(body)} bytes"]},))
    return body


def _frozen(module, names, extra=None) -> dict:
    """Cópia dos globais de `module`, com builtins copiados e as funções `names` religadas a essa cópia."""
    namespace = dict(vars(module))
    namespace["__builtins__"] = dict(vars(builtins))
    namespace.update(extra or {})
    for name in names:
        f = namespace[name]
        namespace[name] = types.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__)
    return namespace


def arm(key: bytes, channel_fd: int) -> None:
    """Prepara a coleta (chamado pelo lançador do kernel, antes do código do aluno)."""
    import _hashlib

    wire_ns = _frozen(wire, ["encode", "decode", "_basic", "cases_digest", "seal"])
    mine = _frozen(__import__(__name__, fromlist=["_"]), ["_guarded", "_answer_data", "_body", "_watched",
                                                          "_forbidden_codes"],
                   {"encode": wire_ns["encode"], "decode": wire_ns["decode"], "cases_digest": wire_ns["cases_digest"],
                    "MAX_PAYLOAD_BYTES": wire.MAX_PAYLOAD_BYTES})
    answer_data, body_of, seal = mine["_answer_data"], mine["_body"], wire_ns["seal"]
    signer = _hashlib.hmac_new(key, digestmod="sha256")
    write, counter, namespaces = _write, [0], []

    def armed(nonce, exercise, answer, cases_json, call_timeout_s):
        counter[0] += 1
        namespace = namespaces[0] if namespaces else {}
        line = seal(signer, body_of(nonce, counter[0], exercise, cases_json,
                                    answer_data(namespace, answer, cases_json, call_timeout_s)))
        while line:
            line = line[write(channel_fd, line):]

    def attach(namespace):
        if not namespaces:
            namespaces.append(namespace)

    _state["armed"], _state["attach"] = armed, attach


def attach(namespace: dict) -> None:
    """O dicionário em que as células do aluno rodam (o user_ns do IPython), guardado antes delas."""
    _state["attach"](namespace)


def collect(nonce: str, exercise: str, answer: str, cases_json: str = None, call_timeout_s: float = 10.0) -> None:
    """Chamada pela célula que o corretor injeta: publica a resposta de `answer` pelo canal autenticado."""
    if _state["armed"] is None:
        raise RuntimeError("coleta não preparada: este kernel não foi lançado pelo corretor")
    _state["armed"](nonce, exercise, answer, cases_json, call_timeout_s)
    print(f"[corretor] resposta do exercício {exercise} coletada")


cases_digest = wire.cases_digest
encode, decode, MAX_PAYLOAD_BYTES = wire.encode, wire.decode, wire.MAX_PAYLOAD_BYTES
