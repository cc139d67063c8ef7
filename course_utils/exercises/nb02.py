"""Juízes dos exercícios do notebook 02 (AWQ e GPTQ), registrados com @exercise."""

import torch

from . import _judge_number, exercise

# Casos públicos (entradas e saídas guardadas como dados; os casos da correção ficam com o professor).
_X1 = [[[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [3.0, 3.0, 3.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]
_M1 = [[1, 1, 0], [1, 0, 0]]                    # 1 = token real, 0 = padding
_X2, _M2 = [[[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]]], [[0, 1]]
_SUM1 = [[2.0, 1.0, 2.0], [1.0, 2.0, 1.0], [2.0, 1.0, 5.0]]   # Σ x xᵀ dos 3 tokens reais do primeiro lote
_SUM2 = [[3.0, 2.0, 3.0], [2.0, 3.0, 2.0], [3.0, 2.0, 6.0]]   # ... e dos 4 depois do segundo


@exercise("02.1", "Hessiano do GPTQ que ignora o padding",
          "uma função f(H, n, x, mascara) -> (H, n), com x [lote, tokens, entradas], mascara [lote, tokens] "
          "e H [entradas, entradas]")
def _masked_hessian(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função f(H, n, x, mascara), recebi {type(answer).__name__}."
    H, n = None, 0
    for x, mask, total, n_exp in ((_X1, _M1, _SUM1, 3), (_X2, _M2, _SUM2, 4)):
        got = answer(H, n, torch.tensor(x), torch.tensor(mask))
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva (H, n)."
        if not (isinstance(got, tuple) and len(got) == 2):
            return False, "devolva uma tupla (H, n): a média atualizada e o total de tokens REAIS vistos."
        H, n = got
        if isinstance(n, torch.Tensor) and n.numel() == 1:
            n = n.item()
        if not isinstance(H, torch.Tensor) or tuple(H.shape) != (3, 3):
            return False, "H deve ser um tensor [entradas, entradas] (aqui 3x3): junte lote e tokens numa dimensão só."
        if n in (6, 8, 9) or n == n_exp + 3:
            return False, "n está contando os tokens de padding: conte só as posições com mascara = 1."
        if n != n_exp:
            return False, "n deve ser o total de tokens reais vistos até agora (o anterior mais os do lote novo)."
        expected = 2 * torch.tensor(total) / n_exp
        H = H.double()
        if torch.allclose(H, expected.double(), rtol=1e-4, atol=1e-5):
            continue
        if torch.allclose(H, expected.double() / 2, rtol=1e-4, atol=1e-5):
            return False, "faltou o fator 2 de H = 2XᵀX (a derivada segunda de ‖XWᵀ − XŴᵀ‖²)."
        if any(torch.allclose(H, expected.double() * n_exp * k, rtol=1e-4) for k in (1, 0.5)):
            return False, "isso é a soma; pedimos a MÉDIA por token: reescale o H anterior antes de somar o lote novo."
        return False, ("H não confere no caso público: H = 2/N Σ x xᵀ só sobre os N tokens com mascara = 1 (o padding "
                       "não entra nem na soma nem na contagem).")
    # propriedade: o padding pode ter qualquer valor que H não muda
    gen = torch.Generator().manual_seed(4)
    x, mask = torch.randn(2, 5, 4, generator=gen), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    noisy = x.clone()
    noisy[mask == 0] = 1e3
    H_a, _ = answer(None, 0, x, mask)
    H_b, _ = answer(None, 0, noisy, mask)
    if not torch.allclose(torch.as_tensor(H_a).double(), torch.as_tensor(H_b).double(), rtol=1e-4, atol=1e-5):
        return False, "trocar os valores das posições de padding mudou H: elas não podem entrar na conta."
    return True, "correto! Com lotes de tamanhos diferentes, o padding não polui mais o Hessiano."


@exercise("02.2", "memória de um Llama-2-7B em w3g64", "um número (GiB)")
def _llama2_7b_w3g64_gib(answer):
    from ..models import LLAMA2_7B_CONFIG
    from ..planner import weight_gib
    from ..quantization import bits_per_weight

    expected = weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 3))
    return _judge_number(answer, expected, 0.005, [
        (weight_gib(LLAMA2_7B_CONFIG, 3.0), "faltou o custo das escalas e dos pontos-zero: são bits por peso a mais."),
        (weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 0)),
         "faltou o ponto-zero de 3 bits de cada grupo (a escala fp16 você contou)."),
        (weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 16)),
         "o ponto-zero é um inteiro de 3 bits, não um número de 16 bits."),
        (expected * 2**30 / 1e9, "a resposta deve estar em GiB (2³⁰ bytes), não em GB (10⁹)."),
        (weight_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 3), "fp32"),
         "embeddings, lm_head e normas ficam em fp16 (16 bits), não em fp32."),
    ])


_U_PUBLIC = [[2.0, 1.0, -1.0, 0.5], [0.0, 1.0, 0.5, 0.25], [0.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.0, 1.0]]
_GPTQ_PUBLIC = [  # (w, bits, ŵ do GPTQ, ŵ do RTN com a mesma escala: o que sai sem propagar o erro)
    ([0.35, -0.8, 0.1, 0.9], 3, [0.3, -0.9, 0.0, 0.6], [0.3, -0.9, 0.0, 0.9]),
    ([0.4, 0.2, -0.9, 0.5], 3, [0.3, 0.0, -0.9, 0.6], [0.3, 0.3, -0.9, 0.6]),
    ([0.5, -0.25, 0.75, -1.0], 3, [2 / 3, 0.0, 2 / 3, -1.0], [2 / 3, -1 / 3, 2 / 3, -1.0]),
]


@exercise("02.3", "o laço do GPTQ numa linha, com quantização simétrica",
          "uma função f(w, U, bits) -> ŵ, com w [d], U [d, d] triangular superior e ŵ [d]")
def _gptq_row(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função f(w, U, bits), recebi {type(answer).__name__}."
    U = torch.tensor(_U_PUBLIC)
    for w, bits, expected, rtn in _GPTQ_PUBLIC:
        w = torch.tensor(w)
        got = answer(w.clone(), U.clone(), bits)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva ŵ."
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (4,):
            return False, "devolva um tensor ŵ com o formato de w ([d]): os pesos quantizados-desquantizados."
        got = got.float()
        scale = w.abs().max() / (2 ** (bits - 1) - 1)
        if not torch.allclose(got / scale, torch.round(got / scale), atol=1e-4):
            return False, ("ŵ saiu da grade: cada ŵ_j é um inteiro de [-(2^(b-1)-1), 2^(b-1)-1] vezes a escala "
                           "max|w|/(2^(b-1)-1), decidida UMA vez, com o w original.")
        if torch.allclose(got, torch.tensor(expected), atol=1e-5):
            continue
        if torch.allclose(got, torch.tensor(rtn), atol=1e-5):
            return False, ("isso é o RTN: depois de quantizar a coluna j, espalhe o erro nas seguintes, "
                           "w_k -= e_j U_jk para k > j, com e_j = (w_j − q_j) / U_jj.")
        return False, ("ŵ não confere no caso público. Confira: e_j = (w_j − q_j) / U_jj (divide, não multiplica), a "
                       "correção usa a linha j de U, e só as colunas depois de j mudam.")
    return True, "correto! É o laço do GPTQ sem os blocos: a linha j de U já traz os coeficientes do passo j."
