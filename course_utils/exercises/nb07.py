"""Juízes dos exercícios do notebook 07 (TensorRT), registrados com @exercise."""

import torch

from . import _judge_number, exercise


@exercise("07.1", "maior |x| com x² finito em fp16", "um número")
def _fp16_square_limit(answer):
    fp16_max = float(torch.finfo(torch.float16).max)
    return _judge_number(answer, fp16_max**0.5, 1e-3, [
        (fp16_max, "esse é o teto do próprio fp16; pedimos o maior x cujo QUADRADO ainda cabe nele."),
        (256.0, "256² = 65536 já passa do teto: o teto do fp16 é 65504, um pouco menos que 2^16."),
        (32767**0.5, "32767 é o teto do int16; o do fp16 é 65504."),
        (float(torch.finfo(torch.bfloat16).max) ** 0.5, "isso vale para o bf16 (8 bits de expoente); pedimos o fp16."),
    ])


class _DtypeSpy(torch.utils._python_dispatch.TorchDispatchMode):
    """Anota o dtype de todo tensor que as operações produzem (para saber se a resposta passou por fp32)."""

    def __init__(self):
        super().__init__()
        self.dtypes = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in torch.utils._pytree.tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.dtypes.add(leaf.dtype)
        return out


def _rmsnorm_cases():
    gen = torch.Generator().manual_seed(72)
    common = torch.randn(3, 64, generator=gen)
    big = torch.randn(2, 64, generator=gen) * 3
    big[:, 5] = torch.tensor([25000.0, -18000.0])
    tiny = torch.randn(2, 32, generator=gen) * 5e-4
    weight = 1 + 0.1 * torch.randn(64, generator=gen)
    return {"valores comuns": (common, weight), "um valor de 25 mil (x² estoura)": (big, weight),
            "valores minúsculos (x² some)": (tiny, weight[:32])}


@exercise("07.2", "RMSNorm só em fp16 que não estoura", "uma função f(x, peso, eps=1e-5) -> tensor fp16")
def _rmsnorm_fp16(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for name, (x, weight) in _rmsnorm_cases().items():
        x64, w64 = x.half().double(), weight.half().double()
        expected = x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-5) * w64   # a definição, em fp64
        spy = _DtypeSpy()
        with spy:
            got = answer(x.half(), weight.half())
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva o tensor."
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            return False, f"devolva um tensor com o formato de x {tuple(x.shape)}."
        if spy.dtypes & {torch.float32, torch.float64}:
            return False, ("a conta passou por fp32/fp64 (é o conserto da seção 3, não o deste exercício): faça tudo "
                           "em fp16, mudando a escala de x antes de elevar ao quadrado.")
        if got.dtype != torch.float16:
            return False, f"a saída deve ser fp16 (veio {got.dtype})."
        if not torch.isfinite(got).all() or (got.abs().amax(-1) == 0).any():
            return False, (f"no caso '{name}' alguma linha virou inf, NaN ou zero: algo estourou (ou sumiu) em fp16. "
                           "Cuidado também com 1/m² e eps/(m·m): escreva a conta de um jeito em que nenhum passo "
                           "intermediário passe de 65504.")
        err = float(((got.double() - expected).abs().amax(-1) / expected.abs().amax(-1)).max())
        if err > 1e-2:
            return False, f"no caso '{name}' o resultado erra {err:.0%} em alguma linha: confira a fórmula e o eps."
    return True, "correto! Nenhum passo passou de 65504, e nada virou zero."


_PROFILE_CASES = [  # formatos vistos, e o perfil certo guardado como dado
    ([(1, 128), (2, 64), (1, 128), (4, 16)], {"min": (1, 16), "opt": (1, 128), "max": (4, 128)}),
    ([(2, 300), (1, 50), (1, 50), (2, 300)], {"min": (1, 50), "opt": (2, 300), "max": (2, 300)}),
]


@exercise("07.3", "perfil de otimização a partir dos formatos vistos",
          "uma função f(formatos) -> {'min': (lote, tokens), 'opt': ..., 'max': ...}")
def _profile(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for shapes, expected in _PROFILE_CASES:
        got = answer(list(shapes))
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva o dict."
        if not isinstance(got, dict) or set(got) != {"min", "opt", "max"}:
            return False, "devolva um dict com as chaves 'min', 'opt' e 'max'."
        try:
            got = {k: tuple(int(v) for v in got[k]) for k in got}
        except (TypeError, ValueError):
            return False, "cada valor deve ser um par (lote, tokens) de inteiros."
        for key in ("min", "max"):
            if got[key] != expected[key]:
                lexicographic = min(shapes) if key == "min" else max(shapes)
                if got[key] == lexicographic:
                    return False, (f"'{key}' saiu como o {key} dos PARES (comparação de tuplas); o perfil quer o {key} "
                                   "de CADA eixo separado, que pode misturar dois formatos.")
                return False, f"'{key}' não confere para {shapes}: olhe cada eixo (lote, tokens) separadamente."
        if got["opt"] != expected["opt"]:
            if got["opt"] not in {tuple(s) for s in shapes}:
                return False, "'opt' deve ser um dos formatos vistos (o mais frequente), não uma média."
            return False, "'opt' não confere: é o formato mais frequente; no empate, o que apareceu primeiro."
    return True, "correto! O TensorRT escolhe os kernels medindo-os no 'opt' e aceita tudo entre 'min' e 'max'."
