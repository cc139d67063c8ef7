"""Calibração para GPTQ e AWQ: amostras de texto, as entradas de cada bloco e a hessiana H = 2XᵀX (X: um token por linha).

Os dois métodos olham os DADOS, não só os pesos: passam algumas sequências de calibração pelo
modelo, bloco a bloco, e guardam o que chega em cada camada linear. Para uma linear y = x Wᵀ,
o erro de saída de trocar W por Ŵ, somado sobre os N tokens X [N, entradas], é

    ‖X Wᵀ − X Ŵᵀ‖² = tr(ΔW XᵀX ΔWᵀ) = ½ tr(ΔW H ΔWᵀ),  com ΔW = W − Ŵ e H = 2 XᵀX.

Aqui H é a média por token (H = 2/N Σ x xᵀ): a mesma hessiana que o GPTQ usa, e a matriz que
o AWQ usa para medir o erro de cada escala candidata sem guardar as ativações.
"""

import torch


def calibration_samples(ids, n_samples: int, seq_len: int, seed: int = 0) -> torch.Tensor:
    """`n_samples` janelas de `seq_len` tokens tiradas em posições aleatórias (semente fixa) de `ids`.

    ids: tensor [n] ou [1, n] com o texto de calibração já tokenizado. Devolve [n_samples, seq_len].
    """
    ids = torch.as_tensor(ids)
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1:
        raise ValueError(f"ids deve ser [n] ou [1, n] (um texto só); veio com formato {tuple(ids.shape)}.")
    if n_samples < 1 or seq_len < 2:
        raise ValueError("Peça pelo menos 1 amostra de pelo menos 2 tokens.")
    if seq_len > ids.numel():
        raise ValueError(f"O texto de calibração tem {ids.numel()} tokens; não cabe uma janela de {seq_len}.")
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, ids.numel() - seq_len + 1, (n_samples,), generator=gen)
    return torch.stack([ids[s: s + seq_len] for s in starts.tolist()])


def decoder_layers(model):
    """Os blocos do transformer (model.model.layers nos modelos tipo Llama)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise ValueError("Esperava um modelo causal tipo Llama, com os blocos em model.model.layers "
                         f"(recebi {type(model).__name__}).")
    return layers


class _StopForward(Exception):
    """Interrompe o forward logo na entrada do primeiro bloco."""


@torch.no_grad()
def block_inputs(model, samples: torch.Tensor, batch_size: int = 8) -> list:
    """O que entra no primeiro bloco para cada lote de amostras: lista de (hidden_states, kwargs).

    Os kwargs (posições, embeddings rotatórios, máscara) são os que o próprio modelo passa ao bloco,
    então `run_block` reproduz exatamente o forward do modelo. Nada passa dos embeddings.
    """
    if samples.dim() != 2:
        raise ValueError(f"samples deve ser [amostras, tokens]; veio com formato {tuple(samples.shape)}.")
    first = decoder_layers(model)[0]
    device = next(model.parameters()).device
    captured = []

    def grab(module, args, kwargs):
        kwargs = dict(kwargs)
        hidden = args[0] if args else kwargs.pop("hidden_states")
        captured.append((hidden, kwargs))
        raise _StopForward

    handle = first.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for batch in samples.split(batch_size):
            try:
                model(batch.to(device), use_cache=False)
            except _StopForward:
                pass
    finally:
        handle.remove()
    return captured


@torch.no_grad()
def run_block(layer, inputs: list) -> list:
    """Passa cada lote de `inputs` pelo bloco; devolve as saídas no mesmo formato (entradas do próximo)."""
    outputs = []
    for hidden, kwargs in inputs:
        out = layer(hidden, **kwargs)
        outputs.append((out[0] if isinstance(out, tuple) else out, kwargs))
    return outputs


def accumulate_hessian(H, n_seen: int, x: torch.Tensor):
    """Acrescenta os tokens de x [..., entradas] à média H = 2/N Σ x xᵀ. Devolve (H, N).

    H=None começa do zero. A média corrente (em vez da soma) mantém os números na mesma escala
    qualquer que seja a quantidade de tokens de calibração.
    """
    x = x.reshape(-1, x.shape[-1]).float()
    n_new = x.shape[0]
    if H is None:
        H = torch.zeros(x.shape[1], x.shape[1], device=x.device, dtype=torch.float32)
    H = H * (n_seen / (n_seen + n_new)) + (2 / (n_seen + n_new)) * (x.T @ x)
    return H, n_seen + n_new


def output_error(w, w_hat, H) -> float:
    """Erro de saída relativo de trocar w por ŵ: tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) (= ‖XΔWᵀ‖² / ‖XWᵀ‖²)."""
    w, dw = w.float(), w.float() - w_hat.float()
    return ((dw @ H) * dw).sum().item() / ((w @ H) * w).sum().clamp(min=1e-30).item()


@torch.no_grad()
def _watch_linear_inputs(model, token_ids, layer_index: int, name: str, on_input, batch_size: int = 8):
    """Passa `token_ids` pelo modelo até o bloco `layer_index` e chama `on_input(x)` com cada lote de entradas
    [..., entradas] da linear `name` desse bloco (ex.: "mlp.down_proj"). Devolve a linear."""
    layers = decoder_layers(model)
    if not 0 <= layer_index < len(layers):
        raise ValueError(f"layer_index={layer_index} fora do modelo (blocos 0..{len(layers) - 1}).")
    try:
        linear = layers[layer_index].get_submodule(name)
    except AttributeError:
        raise ValueError(f"O bloco {layer_index} não tem uma camada {name!r}.") from None
    if not isinstance(linear, torch.nn.Linear):
        raise ValueError(f"{name!r} não é uma nn.Linear (é {type(linear).__name__}).")
    inputs = block_inputs(model, token_ids, batch_size)
    for layer in layers[:layer_index]:
        inputs = run_block(layer, inputs)
    def hook(module, args, output):   # devolve None: a saída da linear não muda
        on_input(args[0].detach())

    handle = linear.register_forward_hook(hook)
    try:
        run_block(layers[layer_index], inputs)
    finally:
        handle.remove()
    return linear


def linear_input_hessian(model, token_ids, layer_index: int = 0, name: str = "mlp.down_proj", batch_size: int = 8):
    """(W, H) de uma linear do modelo: o peso e H = 2XᵀX/N das entradas que ela recebe com `token_ids`
    [amostras, tokens] (média por token, acumulada em lotes com `accumulate_hessian`)."""
    state = [None, 0]

    def add(x):
        state[:] = accumulate_hessian(state[0], state[1], x)

    linear = _watch_linear_inputs(model, token_ids, layer_index, name, add, batch_size)
    return linear.weight.detach(), state[0]


def linear_inputs(model, token_ids, layer_index: int = 0, name: str = "mlp.gate_proj", batch_size: int = 8):
    """As entradas X [tokens, entradas] que uma linear do modelo recebe com `token_ids` [amostras, tokens]."""
    seen = []
    _watch_linear_inputs(model, token_ids, layer_index, name, lambda x: seen.append(x.reshape(-1, x.shape[-1])),
                         batch_size)
    return torch.cat(seen)
