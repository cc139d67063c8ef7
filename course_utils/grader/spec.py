"""O que os arquivos de testes ocultos (grading/<notebook>.py, ou os de --spec-dir) importam, e nada mais.

    from course_utils.grade import Case, Check, Code, FunctionExercise, ValueExercise, close, number, same_tensor
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Check:
    """Um teste oculto sobre o VALOR da resposta: judge(valor) -> (passou, mensagem)."""
    name: str
    points: float
    judge: Callable


@dataclass
class Case:
    """Uma entrada oculta para a FUNÇÃO do aluno: ela é chamada como f(*args, **kwargs) no kernel do aluno."""
    args: tuple
    points: float
    name: str = ""
    kwargs: dict = field(default_factory=dict)


@dataclass
class Code:
    """Entrada oculta que não é dado puro (ex.: um módulo do torch): uma expressão Python, avaliada no kernel do
    aluno e, para a referência, no corretor, com `torch` e `math` à mão. Ex.: Code("torch.nn.Linear(4, 4)")."""
    expr: str


@dataclass
class ValueExercise:
    """Exercício em que o aluno escreve um valor na variável `answer`."""
    id: str
    answer: str
    checks: list
    reference: object = None  # a resposta de referência (os testes conferem que ela passa nos checks)
    title: str = ""  # só para exercícios fora de course_utils.exercises (lá o título já existe)

    @property
    def points(self):
        return sum(c.points for c in self.checks)


@dataclass
class FunctionExercise:
    """Exercício em que o aluno escreve a função `answer`; compare(saída_do_aluno, saída_da_referência)."""
    id: str
    answer: str
    reference: Callable
    cases: list
    compare: Callable = None
    title: str = ""
    # funções que já resolvem o exercício ("módulo:Nome.qualificado", do pacote do curso ou de uma biblioteca): um
    # caso em que a função do aluno chamou alguma delas vale zero (a coleta vê a chamada por qualquer nome)
    forbidden: tuple = ()

    @property
    def points(self):
        return sum(c.points for c in self.cases)


def as_number(value) -> float:
    """Número (int, float, escalar numpy ou tensor de um elemento) como float; TypeError se não for."""
    if hasattr(value, "numel") and callable(value.numel):  # tensor já decodificado
        if value.numel() != 1 or str(value.dtype) == "torch.bool":
            raise TypeError(f"esperava um número, veio um tensor {str(value.dtype).replace('torch.', '')} "
                            f"com {value.numel()} elemento(s)")
        value = value.item()
    elif hasattr(value, "dtype") and getattr(value, "size", 0) == 1:  # array numpy de um elemento
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"esperava um número, veio {type(value).__name__}")
    return float(value)


def _is_close(got, expected, rel_tol, abs_tol) -> tuple:
    try:
        value = as_number(got)
    except TypeError as exc:
        return False, f"tipo errado: {exc}"
    if math.isclose(value, as_number(expected), rel_tol=rel_tol, abs_tol=abs_tol):
        return True, "correto"
    return False, "valor diferente do esperado"


def number(expected: float, rel_tol: float = 1e-6, abs_tol: float = 0.0) -> Callable:
    """Juiz de Check para um valor numérico, com tolerância."""
    return lambda value: _is_close(value, expected, rel_tol, abs_tol)


def close(rel_tol: float = 1e-6, abs_tol: float = 0.0) -> Callable:
    """compare para funções que devolvem um número: confere com a saída da referência, com tolerância."""
    return lambda got, expected: _is_close(got, expected, rel_tol, abs_tol)


def same_tensor(got, expected):
    """compare para funções que devolvem tensor: mesmo tipo (dtype), mesmo formato, mesmos valores."""
    import torch

    if not isinstance(got, torch.Tensor):
        return False, f"devolveu {type(got).__name__}; esperava um tensor"
    if got.dtype != expected.dtype:
        return False, f"devolveu um tensor {str(got.dtype).replace('torch.', '')}; o tipo esperado é outro"
    if got.shape != expected.shape:
        return False, f"formato {list(got.shape)} diferente do esperado"
    if not torch.equal(got, expected):
        wrong = int((got != expected).sum())
        return False, f"valores diferentes em {wrong} de {got.numel()} posições"
    return True, "correto"


def same_value(got, expected):
    """compare estrito para int, str, bool: mesmo tipo e mesmo valor."""
    if type(got) is not type(expected):
        return False, f"devolveu {type(got).__name__}; esperava {type(expected).__name__}"
    return (True, "correto") if got == expected else (False, "valor diferente do esperado")
