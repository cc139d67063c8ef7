"""Juízes dos exercícios do notebook 02 (AWQ e GPTQ), registrados com @exercise."""

import torch

from . import delegation_message, exercise, watch_calls

# Casos públicos (entradas e saídas guardadas como dados; os casos da correção ficam com o professor).
_X1 = [[[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [3.0, 3.0, 3.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]
_M1 = [[1, 1, 0], [1, 0, 0]]                    # 1 = token real, 0 = padding
_X2, _M2 = [[[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]]], [[0, 1]]
_SUM1 = [[2.0, 1.0, 2.0], [1.0, 2.0, 1.0], [2.0, 1.0, 5.0]]   # Σ x xᵀ dos 3 tokens reais do primeiro lote
_SUM2 = [[3.0, 2.0, 3.0], [2.0, 3.0, 2.0], [3.0, 2.0, 6.0]]   # ... e dos 4 depois do segundo


@exercise("02.1", "Hessiana do GPTQ que ignora o padding",
          "uma função f(H, n, x, mascara) -> (H, n), com x [lote, tokens, entradas], mascara [lote, tokens] "
          "e H [entradas, entradas]")
def _masked_hessian(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função f(H, n, x, mascara), recebi {type(answer).__name__}."
    from ..calibration import accumulate_hessian

    H, n = None, 0
    for x, mask, total, n_exp in ((_X1, _M1, _SUM1, 3), (_X2, _M2, _SUM2, 4)):
        with watch_calls(accumulate_hessian) as called:
            got = answer(H, n, torch.tensor(x), torch.tensor(mask))
        if called:
            return False, delegation_message(called)
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
    with watch_calls(accumulate_hessian) as called:
        H_a, _ = answer(None, 0, x, mask)
        H_b, _ = answer(None, 0, noisy, mask)
    if called:
        return False, delegation_message(called)
    if not torch.allclose(torch.as_tensor(H_a).double(), torch.as_tensor(H_b).double(), rtol=1e-4, atol=1e-5):
        return False, "trocar os valores das posições de padding mudou H: elas não podem entrar na conta."
    return True, "correto! Com lotes de tamanhos diferentes, o padding não polui mais a hessiana."


def _duo_public_inputs(seed):
    """Entradas dos casos públicos do 02.2 (geradas de uma semente, arredondadas a 3 casas): W [6, 8] e x [24, 8]
    com dois canais de entrada salientes (1 e 6)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 8, generator=gen) * 0.5
    x = torch.randn(24, 8, generator=gen)
    x[:, [1, 6]] *= 6
    return (w * 1000).round() / 1000, (x * 1000).round() / 1000


# (semente, bits, grupo, n_grid, s esperado, α esperado, {α de um erro típico: dica}); o α de cada erro típico foi
# calculado com a mesma entrada (ele difere do certo nestes casos)
_DUO_PUBLIC = [
    (5, 3, 4, 10, [0.649596, 1.410027, 0.693485, 0.582965, 0.514197, 1.203581, 1.944781, 0.516014], 0.3,
     {0.2: "weights", 0.0: "no_div", 0.6: "same_exp"}),
    (18, 3, 4, 10, [0.640322, 1.80898, 0.832765, 0.694059, 0.552798, 0.679138, 1.39937, 1.066603], 0.4,
     {0.0: "weights", 0.1: "no_div", 0.5: "same_exp"}),
]
_DUO_HINTS = {
    "weights": ("esse α minimiza o erro dos PESOS, ‖W − Q(W·s)/s‖². O AWQ mede o erro da SAÍDA nos dados: "
                "‖x Wᵀ − (x/s) Q(W·s)ᵀ‖²."),
    "no_div": ("a entrada não foi dividida por s: depois de multiplicar as colunas de W por s, a linear recebe x/s "
               "(é a divisão que se dobra na operação anterior)."),
    "same_exp": "confira os expoentes: mean|x| vai à potência α e mean|w| à potência 1 − α (não α).",
}


@exercise("02.2", "a busca do AWQ com a escala que olha os pesos (duo scaling)",
          "uma função f(W, x, bits, group_size, n_grid) -> (s, alfa), com W [saídas, entradas], x [tokens, "
          "entradas], s [entradas] e alfa um número da grade")
def _awq_duo_search(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função f(W, x, bits, group_size, n_grid), recebi {type(answer).__name__}."
    from ..awq import awq_layer_errors, awq_scale, awq_search_scale

    for seed, bits, group_size, n_grid, s_expected, alpha_expected, wrong in _DUO_PUBLIC:
        w, x = _duo_public_inputs(seed)
        with watch_calls(awq_search_scale, awq_scale, awq_layer_errors) as called:
            got = answer(w.clone(), x.clone(), bits, group_size, n_grid)
        if called:
            return False, delegation_message(called)
        if got is None:
            return False, "a função ainda devolve None: devolva a tupla (s, alfa) do menor erro."
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            return False, "devolva uma tupla (s, alfa): a escala por canal de entrada e o α escolhido."
        s, alpha = got
        if isinstance(alpha, torch.Tensor) and alpha.numel() == 1:
            alpha = alpha.item()
        if not isinstance(s, torch.Tensor) or tuple(s.shape) != (8,):
            return False, "s deve ser um tensor [entradas] (aqui 8): um fator por canal de entrada, que multiplica as colunas de W."
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            return False, f"alfa deve ser um número da grade, não {type(alpha).__name__}."
        if not any(abs(alpha - k / n_grid) < 1e-6 for k in range(n_grid)):
            return False, "alfa deve ser um ponto da grade {0, 1/n, ..., (n−1)/n} (n = n_grid; 1 não entra)."
        s = s.detach().double()
        if not torch.isfinite(s).all() or (s <= 0).any():
            return False, "s tem de ser positivo e finito em todos os canais (confira o clamp das médias)."
        expected = torch.tensor(s_expected, dtype=torch.float64)
        if abs(alpha - alpha_expected) < 1e-6:
            if torch.allclose(s, expected, rtol=1e-3):
                continue
            ratio = s / expected
            if torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-3):
                return False, "α certo, mas s não foi normalizado: divida s por √(max s · min s)."
            return False, "α certo, mas o s devolvido não é o s desse α: devolva o s com que o menor erro foi medido."
        for wrong_alpha, kind in wrong.items():
            if abs(alpha - wrong_alpha) < 1e-6:
                return False, _DUO_HINTS[kind]
        return False, ("α não confere no caso público. Confira: mean|x| sobre os tokens e mean|w| sobre as linhas (por "
                       "canal de entrada), s normalizado, e o erro da saída com Q = rtn_quantize(W·s, bits, group_size).")
    return True, "correto! É a escala padrão do AWQ do AutoAWQ e do AutoRound (lá, |w| é normalizado por grupo)."


_U_PUBLIC = [[2.0, 1.0, -1.0, 0.5], [0.0, 1.0, 0.5, 0.25], [0.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.0, 1.0]]
_GPTQ_PUBLIC = [  # (w, bits, ŵ do GPTQ, ŵ do RTN com a mesma escala: o que sai sem propagar o erro)
    ([0.35, -0.8, 0.1, 0.9], 3, [0.3, -0.9, 0.0, 0.6], [0.3, -0.9, 0.0, 0.9]),
    ([0.4, 0.2, -0.9, 0.5], 3, [0.3, 0.0, -0.9, 0.6], [0.3, 0.3, -0.9, 0.6]),
    # valores diádicos: cada passo é exato em float32 e em float64 (e os empates do torch.round não dependem da precisão)
    ([-0.75, -0.75, -0.625, -0.375], 3, [-0.75, -0.75, -0.5, 0.0], [-0.75, -0.75, -0.5, -0.5]),
]


@exercise("02.3", "o laço do GPTQ numa linha, com quantização simétrica",
          "uma função f(w, U, bits) -> ŵ, com w [d], U [d, d] triangular superior e ŵ [d]")
def _gptq_row(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função f(w, U, bits), recebi {type(answer).__name__}."
    from ..gptq import gptq_quantize_weight

    U = torch.tensor(_U_PUBLIC)
    for w, bits, expected, rtn in _GPTQ_PUBLIC:
        w = torch.tensor(w)
        with watch_calls(gptq_quantize_weight) as called:
            got = answer(w.clone(), U.clone(), bits)
        if called:
            return False, delegation_message(called)
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
