"""GPTQ (Frantar et al., ICLR 2023, arXiv 2210.17323), escrito para ler.

A ideia: quantizar as colunas de W uma a uma e, a cada coluna, corrigir as colunas que ainda
não foram quantizadas para compensar o erro que acabou de ser cometido, usando a hessiana
H = 2XᵀX das entradas da camada (X: um token por linha) (course_utils.calibration). O que a função minimiza é o erro
de SAÍDA da camada nos dados de calibração, ‖XWᵀ − XŴᵀ‖², não o erro dos pesos ‖W − Ŵ‖.

Os passos, cada um numa função:
  1. entradas de calibração de cada bloco ............ calibration.block_inputs / run_block
  2. H = 2/N Σ x xᵀ para cada linear ................. calibration.accumulate_hessian
  3. amortecimento + Cholesky da inversa ............. gptq_inverse_hessian
  4. coluna a coluna, com correção do erro em blocos . gptq_quantize_weight
  5. bloco a bloco pelo modelo (os blocos seguintes veem os anteriores já quantizados) ... gptq_quantize

O quantizador de cada grupo é o mesmo do RTN (course_utils.quantization: ponto-zero inteiro,
assimétrico): o GPTQ muda QUAIS valores são arredondados, não a grade.
"""

import torch
from tqdm.auto import tqdm

from .calibration import accumulate_hessian, block_inputs, decoder_layers, output_error, run_block
from .measure import one_cpu_thread
from .quantization import rtn_quantize, zeropoint_fake_quantize, zeropoint_params


def gptq_inverse_hessian(H, damp: float = 0.01):
    """Fator de Cholesky superior U da inversa amortecida: Uᵀ U = (H + λI)⁻¹, λ = damp · média(diag H).

    O amortecimento λ deixa H invertível mesmo com poucos tokens de calibração (posto < entradas).
    A linha j de U traz, já "condicionados" às colunas anteriores, os coeficientes com que o erro
    da coluna j se espalha pelas colunas seguintes: é a forma estável de fazer as atualizações do OBS.
    """
    if H.dim() != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H deve ser uma matriz quadrada [entradas, entradas]; veio {tuple(H.shape)}.")
    if damp < 0:
        raise ValueError(f"damp deve ser >= 0, não {damp}.")
    H = H.float().clone()
    H.diagonal().add_(damp * H.diagonal().mean())
    # uma thread na CPU: com 2, o cholesky_inverse chegou a levar 20 s em vez de 0,3 s (measure.one_cpu_thread)
    with one_cpu_thread(H.device):
        try:
            L = torch.linalg.cholesky(H)
        except RuntimeError as exc:
            raise ValueError("H + λI não é positiva definida (Cholesky falhou): aumente `damp` "
                             "(ex.: 0.1) ou use mais tokens de calibração.") from exc
        return torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)


@torch.no_grad()
def gptq_quantize_weight(weight, H, bits: int = 4, group_size: int | None = 64, block_size: int = 128,
                         damp: float = 0.01, act_order: bool = False):
    """Quantiza W [saídas, entradas] com GPTQ; devolve Ŵ (quantizado-desquantizado) no dtype de W.

    Para cada coluna j (na ordem natural, ou por diag(H) decrescente com act_order), com Uᵀ U = H⁻¹:
        q_j = quant(w_j)                       (escala e zero do grupo, calculados ao entrar nele)
        e_j = (w_j − q_j) / U_jj
        w_k ← w_k − e_j · U_jk   para k > j    (compensação do erro, OBS)
    U_jk / U_jj = [(H_F)⁻¹]_jk / [(H_F)⁻¹]_jj, com F = colunas j..d ainda não quantizadas: a Cholesky
    da inversa traz a inversa do bloco que RESTA em cada passo (complemento de Schur), sem refazê-la.
    Com act_order os grupos são colunas consecutivas na ordem permutada (um formato real guarda g_idx).
    As correções dentro de um bloco de `block_size` colunas são feitas na hora; as colunas depois
    do bloco recebem todas de uma vez, numa multiplicação de matrizes (atualização "preguiçosa").
    """
    if weight.dim() != 2:
        raise ValueError(f"weight deve ser 2D [saídas, entradas]; veio {tuple(weight.shape)}.")
    rows, cols = weight.shape
    if tuple(H.shape) != (cols, cols):
        raise ValueError(f"H deve ser [{cols}, {cols}] (entradas x entradas de W); veio {tuple(H.shape)}.")
    if group_size is not None and cols % group_size:
        raise ValueError(f"As entradas ({cols}) não são divisíveis por group_size={group_size}.")
    if group_size is not None and block_size % group_size:
        raise ValueError(f"block_size={block_size} deve ser múltiplo de group_size={group_size} "
                         "(cada grupo inteiro dentro de um bloco).")

    # Trabalhamos com Wᵀ [entradas, saídas]: a coluna j de W é a linha j, contígua na memória
    # (na CPU as atualizações por coluna ficam bem mais rápidas assim).
    Wt = weight.detach().float().t().contiguous()
    H = H.detach().float().to(Wt.device).clone()
    dead = H.diagonal() == 0          # entradas que nunca foram ativadas: peso irrelevante, vira 0
    H[dead, dead] = 1
    Wt[dead] = 0
    perm = None
    if act_order:                     # colunas com mais "energia" de entrada primeiro
        perm = torch.argsort(H.diagonal(), descending=True)
        Wt, H = Wt[perm], H[perm][:, perm]
    U = gptq_inverse_hessian(H, damp)

    with one_cpu_thread(Wt.device):
        Qt = torch.zeros_like(Wt)
        if group_size is None:        # uma escala por linha de W, decidida antes de começar
            scale, zero = (t[:, 0] for t in zeropoint_params(Wt.t(), bits))
        for b0 in range(0, cols, block_size):
            b1 = min(b0 + block_size, cols)
            Wb, Ub = Wt[b0:b1].clone(), U[b0:b1, b0:b1]
            Err = torch.zeros_like(Wb)
            for j in range(b1 - b0):
                if group_size is not None and (b0 + j) % group_size == 0:   # entrou num grupo novo
                    scale, zero = (t[:, 0] for t in zeropoint_params(Wb[j: j + group_size].t(), bits))
                w = Wb[j]
                q = zeropoint_fake_quantize(w, scale, zero, bits)
                Qt[b0 + j] = q
                err = (w - q) / Ub[j, j]
                Wb[j:].addr_(Ub[j, j:], err, alpha=-1)       # dentro do bloco: w_k -= e_j U_jk, na hora
                Err[j] = err
            Wt[b1:] -= U[b0:b1, b1:].t() @ Err                # depois do bloco: todas de uma vez
    if act_order:
        Qt = Qt[torch.argsort(perm)]
    return Qt.t().to(weight.dtype)


@torch.no_grad()
def gptq_quantize(model, samples, bits: int = 4, group_size: int | None = 64, block_size: int = 128,
                  damp: float = 0.01, act_order: bool = False, batch_size: int = 8,
                  track_errors: bool = False, progress: bool = True) -> dict:
    """GPTQ no modelo inteiro, no lugar, bloco a bloco. samples: [amostras, tokens] de calibração.

    Para cada bloco: (a) passa as entradas atuais com ganchos que acumulam H de cada linear;
    (b) quantiza as lineares com gptq_quantize_weight; (c) passa as entradas de novo pelo bloco
    JÁ quantizado, e essas saídas são as entradas do bloco seguinte. Assim cada bloco corrige
    também o erro que os anteriores introduziram. Embeddings e lm_head não são tocados.

    Devolve {"linears": quantas, "output_errors": {camada: {"rtn": e, "gptq": e}}}; os erros de
    saída relativos (calibration.output_error) só são calculados com track_errors=True.
    """
    layers = decoder_layers(model)
    inputs = block_inputs(model, samples, batch_size)
    count, errors = 0, {}
    for i, layer in enumerate(tqdm(layers, desc=f"GPTQ w{bits}", disable=not progress, leave=False)):
        linears = {name: m for name, m in layer.named_modules() if isinstance(m, torch.nn.Linear)}
        hessians = {name: (None, 0) for name in linears}

        def make_hook(name, store=hessians):  # `store`: o dicionário desta camada, ligado agora
            def hook(module, args, output):
                store[name] = accumulate_hessian(*store[name], args[0])
            return hook

        handles = [m.register_forward_hook(make_hook(name)) for name, m in linears.items()]
        try:
            run_block(layer, inputs)                                      # (a)
        finally:
            for h in handles:
                h.remove()
        # (b) lineares com a mesma entrada (q/k/v; gate/up) têm o mesmo H: quantizadas juntas, empilhadas
        # (no GPTQ cada linha de W é independente das outras; só as colunas conversam, via H)
        for names in _same_input(hessians):
            H = hessians[names[0]][0]
            W = torch.cat([linears[n].weight for n in names])
            W_hat = gptq_quantize_weight(W, H, bits, group_size, block_size, damp, act_order)
            for name, w_hat in zip(names, W_hat.split([linears[n].weight.shape[0] for n in names]), strict=True):
                m = linears[name]
                if track_errors:
                    errors[f"{i}.{name}"] = {"rtn": output_error(m.weight, rtn_quantize(m.weight, bits, group_size), H),
                                             "gptq": output_error(m.weight, w_hat, H)}
                m.weight.copy_(w_hat)
                count += 1
        inputs = run_block(layer, inputs)                                 # (c)
    return {"linears": count, "output_errors": errors}


def _same_input(hessians: dict) -> list:
    """Agrupa os nomes das lineares cujo H é idêntico (receberam a mesma entrada)."""
    groups = []
    for name, (H, _) in hessians.items():
        for g in groups:
            if hessians[g[0]][0].shape == H.shape and torch.equal(hessians[g[0]][0], H):
                g.append(name)
                break
        else:
            groups.append([name])
    return groups
