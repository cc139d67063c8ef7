"""AWQ (Lin et al., MLSys 2024, arXiv 2306.00978), escrito para ler.

A observação: poucos canais de ENTRADA têm ativações grandes, e os pesos que multiplicam esses
canais importam mais. Em vez de guardá-los em precisão maior, o AWQ multiplica as colunas de W
por um fator s > 1 nesses canais (menos erro relativo de arredondamento) e divide a entrada pelo
mesmo s. Em ponto flutuante nada muda:  y = x Wᵀ = (x / s)(W · diag(s))ᵀ.  A divisão é "dobrada"
na operação anterior (a RMSNorm antes de q/k/v e de gate/up; a up_proj antes da down_proj), então
não custa nada na inferência. Depois disso vem o RTN comum (course_utils.quantization.rtn_quantize).

O fator é s = mean|x|^α por canal (média sobre TODOS os tokens de calibração), com α escolhido numa
grade para cada grupo de lineares que divide a mesma entrada, minimizando o erro de saída do artigo

    L(s) = ‖Q(W·diag(s)) (diag(s)⁻¹ X) − W X‖²

medido numa amostra de tokens de calibração (`search_tokens`; na CPU, o custo da busca é proporcional
a ela). Opcional: uma busca do limite de recorte (clipping) de cada grupo de pesos, que usa a hessiana
H = 2XᵀX/N de todos os tokens (course_utils.calibration) e custa pouco.

Simplificação deste curso (igual em espírito ao AutoAWQ/llm-awq): o erro é medido na saída de cada
linear do grupo, não na saída do bloco de atenção/MLP inteiro. Como no AutoAWQ, as entradas de cada
bloco vêm do modelo em ponto flutuante.
"""

import torch
from tqdm.auto import tqdm

from .calibration import accumulate_hessian, block_inputs, decoder_layers, output_error, run_block
from .quantization import rtn_quantize


def awq_scale(x_absmean, alpha: float):
    """A escala do AWQ por canal de entrada: s = mean|x|^α, normalizada por √(max s · min s) (fica em torno de 1)."""
    s = x_absmean.float().clamp(min=1e-8).pow(alpha)
    return s / (s.max() * s.min()).sqrt()


@torch.no_grad()
def awq_search_scale(weights: list, x, x_absmean, bits: int = 4, group_size: int | None = 64, n_grid: int = 20):
    """Busca em grade do expoente α para as lineares `weights` que recebem a mesma entrada.

    x: amostra de entradas [tokens, entradas]; x_absmean: mean|x| por canal [entradas].
    s(α) = mean|x|^α, normalizado por √(max s · min s); α ∈ {0, 1/n, ..., (n−1)/n}; a perda é
    Σ ‖x Wᵀ − (x/s) Q(W·s)ᵀ‖² sobre as lineares do grupo. α = 0 dá s = 1, o RTN puro: o α
    escolhido nunca erra mais que o RTN nessa amostra. Devolve (s, α, perdas por α).
    """
    if not weights:
        raise ValueError("Passe pelo menos uma matriz de pesos.")
    cols = weights[0].shape[1]
    if any(w.dim() != 2 or w.shape[1] != cols for w in weights):
        raise ValueError("Todas as lineares do grupo devem ter o mesmo número de entradas (a mesma entrada x).")
    if x.dim() != 2 or x.shape[1] != cols or tuple(x_absmean.shape) != (cols,):
        raise ValueError(f"x deve ser [tokens, {cols}] e x_absmean [{cols}].")
    if n_grid < 1:
        raise ValueError("n_grid deve ser pelo menos 1.")
    x = x.float()
    x_absmean = x_absmean.float().clamp(min=1e-8)
    weights = [w.detach().float() for w in weights]
    reference = [x @ w.T for w in weights]
    best, losses = (float("inf"), None, None), []
    for k in range(n_grid):
        alpha = k / n_grid
        s = awq_scale(x_absmean, alpha)
        loss = sum(((x / s) @ rtn_quantize(w * s, bits, group_size).T - y).pow(2).sum()
                   for w, y in zip(weights, reference, strict=True)).item()
        losses.append(loss)
        if loss < best[0]:
            best = (loss, s, alpha)
    return best[1], best[2], losses


@torch.no_grad()
def fold_scales(prev, linears: list, s) -> None:
    """Multiplica as colunas de cada linear por s e divide a saída de `prev` por s (no lugar).

    prev: uma norma com `.weight` (RMSNorm: y = g ⊙ x/rms(x), então g ← g/s) ou uma nn.Linear
    (linhas e viés ← /s). Em ponto flutuante a saída do modelo não muda.
    """
    s = s.detach()
    if isinstance(prev, torch.nn.Linear):
        prev.weight.div_(s.to(prev.weight.dtype)[:, None])
        if prev.bias is not None:
            prev.bias.div_(s.to(prev.bias.dtype))
    elif isinstance(getattr(prev, "weight", None), torch.Tensor) and prev.weight.dim() == 1:
        prev.weight.div_(s.to(prev.weight.dtype))
    else:
        raise ValueError(f"Não sei dobrar a escala em {type(prev).__name__}: esperava uma norma com peso 1D ou uma nn.Linear.")
    for linear in linears:
        linear.weight.mul_(s.to(linear.weight.dtype)[None, :])


@torch.no_grad()
def awq_clip(weight, H, bits: int = 4, group_size: int = 64, n_grid: int = 20, max_shrink: float = 0.5):
    """Busca, para cada grupo de pesos, o limite de recorte r·max|w| (r de 1 a 1 − max_shrink)
    que minimiza o erro de saída do grupo, Δw_g H_g Δw_gᵀ (H_g = bloco do grupo na diagonal de H).

    Recortar os extremos de um grupo encolhe a escala e arredonda melhor os outros pesos.
    Devolve W recortado (ainda em ponto flutuante; o RTN vem depois). r = 1 não recorta nada.
    """
    rows, cols = weight.shape
    if cols % group_size:
        raise ValueError(f"As entradas ({cols}) não são divisíveis por group_size={group_size}.")
    n_groups = cols // group_size
    w = weight.detach().float().reshape(rows, n_groups, group_size)
    Hg = torch.stack([H[g * group_size:(g + 1) * group_size, g * group_size:(g + 1) * group_size]
                      for g in range(n_groups)]).float()                   # [grupos, gs, gs]
    max_abs = w.abs().amax(dim=-1, keepdim=True)
    best_err = torch.full((rows, n_groups), float("inf"), device=w.device)
    best_lim = max_abs.clone()
    for k in range(int(max_shrink * n_grid)):
        lim = max_abs * (1 - k / n_grid)
        wc = torch.maximum(torch.minimum(w, lim), -lim)
        dw = w - rtn_quantize(wc.reshape(rows, cols), bits, group_size).reshape(rows, n_groups, group_size)
        err = (torch.einsum("rgi,gij->rgj", dw, Hg) * dw).sum(-1)         # [linhas, grupos]
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_lim = torch.where(better[..., None], lim, best_lim)
    clipped = torch.maximum(torch.minimum(w, best_lim), -best_lim)
    return clipped.reshape(rows, cols).to(weight.dtype)


def llama_scale_groups(layer) -> list:
    """Os grupos do AWQ num bloco tipo Llama: (operação anterior, lineares que dividem a entrada).

    A v_proj → o_proj só entra quando as formas batem (sem GQA); com GQA (SmolLM2: 3 cabeças KV
    para 9 de consulta) a o_proj fica sem escala (prev=None), como no AutoAWQ.
    """
    attn, mlp = layer.self_attn, layer.mlp
    v_to_o = attn.v_proj if attn.v_proj.out_features == attn.o_proj.in_features else None
    return [
        (layer.input_layernorm, [attn.q_proj, attn.k_proj, attn.v_proj]),
        (v_to_o, [attn.o_proj]),
        (layer.post_attention_layernorm, [mlp.gate_proj, mlp.up_proj]),
        (mlp.up_proj, [mlp.down_proj]),
    ]


@torch.no_grad()
def awq_quantize(model, samples, bits: int = 4, group_size: int = 64, n_grid: int = 20, clip: bool = True,
                 search_tokens: int = 512, batch_size: int = 8, progress: bool = True) -> dict:
    """AWQ no modelo inteiro, no lugar, bloco a bloco. samples: [amostras, tokens] de calibração.

    Para cada bloco: (a) um forward em ponto flutuante acumula, na entrada de cada grupo, mean|x| por
    canal e H = 2XᵀX/N (todos os tokens), guarda `search_tokens` tokens espaçados para a busca, e dá
    as entradas do próximo bloco; (b) busca α e dobra s em cada grupo; (c) opcionalmente busca o
    recorte de cada linear (menos q e k, como no AutoAWQ), com o H da entrada já dividida por s;
    (d) RTN de todas as lineares do bloco. Devolve {"linears": quantas, "alphas": {"camada.grupo": α}}.
    """
    layers = decoder_layers(model)
    inputs = block_inputs(model, samples, batch_size)
    step = max(1, samples.numel() // search_tokens)       # um token a cada `step` vai para a busca
    count, alphas = 0, {}
    for i, layer in enumerate(tqdm(layers, desc=f"AWQ w{bits}", disable=not progress, leave=False)):
        groups = llama_scale_groups(layer)
        stats = [{"H": None, "n": 0, "abs_sum": 0.0, "x": []} for _ in groups]

        def make_hook(st):
            def hook(module, args, output):
                x = args[0].reshape(-1, args[0].shape[-1]).float()
                st["H"], st["n"] = accumulate_hessian(st["H"], st["n"], x)
                st["abs_sum"] = st["abs_sum"] + x.abs().sum(0)
                st["x"].append(x[::step])
            return hook

        handles = [lins[0].register_forward_hook(make_hook(st)) for (_, lins), st in zip(groups, stats, strict=True)]
        try:
            outputs = run_block(layer, inputs)                                       # (a)
        finally:
            for h in handles:
                h.remove()
        for g, ((prev, lins), st) in enumerate(zip(groups, stats, strict=True)):
            H = st["H"]
            if prev is not None:                                                      # (b)
                x = torch.cat(st["x"])[:search_tokens]
                s, alpha, _ = awq_search_scale([m.weight for m in lins], x, st["abs_sum"] / st["n"],
                                               bits, group_size, n_grid)
                fold_scales(prev, lins, s)
                alphas[f"{i}.{g}"] = alpha
                H = H / s[:, None] / s[None, :]          # a entrada agora é x / s
            for m in lins:
                if clip and not (m is layer.self_attn.q_proj or m is layer.self_attn.k_proj):   # (c)
                    m.weight.copy_(awq_clip(m.weight, H, bits, group_size, n_grid))
        for m in layer.modules():                                                     # (d)
            if isinstance(m, torch.nn.Linear):
                m.weight.copy_(rtn_quantize(m.weight, bits, group_size))
                count += 1
        inputs = outputs
    return {"linears": count, "alphas": alphas}


@torch.no_grad()
def awq_layer_errors(weight, x_absmean, H, bits: int = 4, group_size: int | None = 64, alpha: float = 0.5) -> dict:
    """Erro relativo da saída de UMA linear (calibration.output_error, com o H das entradas em que se mede) ao
    quantizar com RTN e com a escala do AWQ de expoente `alpha` fixo (sem busca, sem recorte).

    AWQ aqui: Ŵ = Q(W·diag(s)) · diag(s)⁻¹, com s = awq_scale(x_absmean, alpha); é o peso que a linear usa
    depois de dobrar 1/s na operação anterior. α = 0 dá s = 1: o próprio RTN. Devolve {"rtn": e, "awq": e}.
    """
    if weight.dim() != 2 or tuple(x_absmean.shape) != (weight.shape[1],):
        raise ValueError(f"weight deve ser [saídas, entradas] e x_absmean [entradas]; vieram {tuple(weight.shape)} "
                         f"e {tuple(x_absmean.shape)}.")
    if group_size is not None and weight.shape[1] % group_size:
        raise ValueError(f"As entradas ({weight.shape[1]}) não são divisíveis por group_size={group_size}.")
    w = weight.detach().float()
    s = awq_scale(x_absmean.to(w.device), alpha)
    awq_w = rtn_quantize(w * s, bits, group_size) / s
    return {"rtn": output_error(w, rtn_quantize(w, bits, group_size), H), "awq": output_error(w, awq_w, H)}
