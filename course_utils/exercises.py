"""Exercícios com autocorreção: `check("01.2", minha_funcao)` imprime um retorno em português.

Cada exercício é uma função registrada com @exercise que recebe a resposta do aluno e
devolve (acertou, mensagem). `check` nunca deixa uma resposta ruim quebrar o notebook:
tipo errado, exceção no código do aluno ou resposta ausente viram uma mensagem com dica,
sem revelar a resposta. A correção em lote (professor) reutiliza o mesmo registro.
"""

import math
import numbers
from dataclasses import dataclass

import torch


@dataclass
class Exercise:
    id: str
    title: str
    expects: str  # o que a resposta deve ser, dito para o aluno
    judge: callable


EXERCISES: dict = {}


def exercise(id: str, title: str, expects: str):
    """Registra a função que julga o exercício `id` ("01.1" = notebook 01, exercício 1)."""
    def register(judge):
        EXERCISES[id] = Exercise(id, title, expects, judge)
        return judge
    return register


def evaluate(id: str, answer) -> tuple:
    """(acertou, mensagem) sem imprimir nada; nunca levanta exceção por causa da resposta."""
    if id not in EXERCISES:
        return False, f"Não existe o exercício {id!r}. Os disponíveis são: {', '.join(sorted(EXERCISES))}."
    ex = EXERCISES[id]
    if answer is None or answer is Ellipsis:
        return False, f"Ainda sem resposta. Esperado: {ex.expects}."
    try:
        return ex.judge(answer)
    except Exception as exc:  # o código do aluno pode falhar de qualquer jeito
        return False, f"Sua resposta levantou {type(exc).__name__}: {exc}. Esperado: {ex.expects}."


def check(id: str, answer) -> bool:
    """Confere a resposta e imprime o retorno (✅ ou ❌ com dica). Devolve True se acertou."""
    ok, message = evaluate(id, answer)
    title = EXERCISES[id].title if id in EXERCISES else id
    print(f"{'✅' if ok else '❌'} Exercício {id} ({title}): {message}")
    return ok


def _number(answer):
    if isinstance(answer, torch.Tensor) and answer.numel() == 1 and not answer.dtype == torch.bool:
        answer = answer.item()
    elif hasattr(answer, "dtype") and hasattr(answer, "item") and getattr(answer, "size", 0) == 1:  # escalar numpy
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise _WrongType(f"a resposta deve ser um número, mas é do tipo {type(answer).__name__}")
    return float(answer)


class _WrongType(Exception):
    pass


def _judge_number(answer, expected, rel_tol, hints):
    """Compara números; `hints` é uma lista de (valor errado típico, dica)."""
    try:
        value = _number(answer)
    except _WrongType as exc:
        return False, f"Tipo errado: {exc}."
    if math.isclose(value, expected, rel_tol=rel_tol):
        return True, "correto!"
    for wrong, hint in hints:
        if math.isclose(value, wrong, rel_tol=rel_tol):
            return False, hint
    return False, "ainda não. Refaça a conta passo a passo com a fórmula da seção acima."


# ---------------------------------------------------------------- notebook 01

@exercise("01.1", "bits por peso do Q4_1", "um número (bits por peso, float)")
def _q4_1_bits(answer):
    # 4 bits + escala fp16 + mínimo fp16 por grupo de 32 pesos
    expected = 4 + (16 + 16) / 32
    return _judge_number(answer, expected, 1e-6, [
        (4.0, "4 é só o código de cada peso: some o custo da escala e do mínimo, divididos pelo grupo."),
        (4 + 16 / 32, "faltou um dos dois números de 16 bits guardados por grupo (escala e mínimo)."),
        (4 + 32 / 32 / 8, "cuidado com a unidade: a escala e o mínimo têm 16 bits cada, não 16 bytes nem 1 byte."),
    ])


@exercise("01.2", "absmax INT8 por canal", "uma função f(w) -> (q, escala), com q int8 [linhas, colunas] e escala [linhas, 1]")
def _absmax_int8(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(16, 48, generator=gen) * torch.linspace(0.1, 3, 16)[:, None]
    w[3, 7] = 25.0  # um outlier numa linha só
    out = answer(w.clone())
    if not (isinstance(out, tuple) and len(out) == 2):
        return False, "a função deve devolver uma tupla (q, escala)."
    q, scale = out
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        return False, f"q deve ser um tensor torch.int8 (veio {getattr(q, 'dtype', type(q).__name__)}). Dica: .to(torch.int8) depois de arredondar."
    if tuple(q.shape) != tuple(w.shape):
        return False, f"q deve ter o formato dos pesos {tuple(w.shape)}, veio {tuple(q.shape)}."
    scale = torch.as_tensor(scale, dtype=torch.float32)
    if scale.numel() == 1:
        return False, "uma escala só é quantização por tensor; queremos uma escala por linha (canal de saída)."
    if scale.numel() != w.shape[0]:
        return False, f"esperava {w.shape[0]} escalas (uma por linha), vieram {scale.numel()}."
    scale = scale.reshape(-1, 1)
    if q.abs().max().item() > 127:
        return False, "há valores fora de [-127, 127]."
    if q.abs().amax(dim=1).min().item() < 127:
        return False, "o maior |q| de cada linha deveria ser 127: a escala é max|w| da linha dividido por 127."
    err = (q.float() * scale - w).abs()
    if (err > scale / 2 + 1e-5).any():
        return False, "a reconstrução q*escala erra mais que meia escala: confira o arredondamento (torch.round)."
    return True, "correto! O outlier da linha 3 só estragou a escala da própria linha."


@exercise("01.3", "GiB de um modelo de 1,7 B parâmetros em fp16", "um número (GiB, float)")
def _gib_fp16(answer):
    expected = 1.7e9 * 2 / 2**30
    return _judge_number(answer, expected, 0.01, [
        (1.7e9 * 2 / 1e9, "isso está em GB (10^9 bytes); pedimos GiB (2^30 bytes)."),
        (1.7e9 * 4 / 2**30, "fp16 tem 2 bytes por parâmetro, não 4."),
        (1.7e9 / 2**30, "faltou multiplicar pelos bytes por parâmetro."),
    ])


# ---------------------------------------------------------------- notebook 05

@exercise("05.1", "GiB do cache KV de um Llama-2-7B com 4.096 tokens", "um número (GiB, float)")
def _kv_llama(answer):
    per_token = 2 * 32 * 32 * 128 * 2  # K e V, camadas, cabeças KV, dimensão, bytes do fp16
    expected = per_token * 4096 / 2**30
    return _judge_number(answer, expected, 0.01, [
        (expected / 2, "faltou o fator 2: o cache guarda as chaves E os valores."),
        (expected * 2, "fp16 tem 2 bytes por elemento, não 4."),
        (per_token * 4096 / 1e9, "isso está em GB (10^9 bytes); pedimos GiB (2^30 bytes)."),
    ])


@exercise("05.2", "filtro top-p", "uma função f(logits, p) -> logits com -inf nos tokens removidos")
def _top_p(answer):
    from .generation import top_p_filter

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(5)
    for p in (0.5, 0.9, 0.99):
        logits = torch.randn(4, 40, generator=gen) * 3
        got = answer(logits.clone(), p)
        if not isinstance(got, torch.Tensor) or got.shape != logits.shape:
            return False, "a função deve devolver um tensor com o mesmo formato dos logits."
        kept, ref = torch.isfinite(got), torch.isfinite(top_p_filter(logits, p))
        if not kept.any(dim=-1).all():
            return False, "alguma linha ficou sem nenhum token: mantenha sempre pelo menos o mais provável."
        if not torch.equal(kept, ref):
            probs = torch.softmax(logits, -1)
            out_of_order = any((~k).any() and pr[k].min() < pr[~k].max() for k, pr in zip(kept, probs))
            if out_of_order:
                return False, ("você manteve um token menos provável que outro removido: a máscara calculada na ordem "
                               "ordenada precisa voltar às posições originais (scatter).")
            if kept.sum() < ref.sum():
                return False, "removeu tokens demais: mantenha também o token que faz a soma passar de p."
            return False, f"com p={p} o conjunto mantido não confere. Some as probabilidades em ordem decrescente."
        if not torch.allclose(got[kept], logits[kept]):
            return False, "os logits mantidos não devem mudar de valor."
    return True, "correto!"


@exercise("05.3", "quanto o GQA encolhe o cache do modelo de referência", "um número (quantas vezes menor)")
def _gqa_ratio(answer):
    return _judge_number(answer, 9 / 3, 1e-6, [
        (1 / 3, "é o inverso: quantas vezes MENOR, ou seja, cache sem GQA dividido pelo cache com GQA."),
        (9.0, "o cache depende das cabeças KV (3), não só das de consulta (9): compare 9 com 3."),
    ])


# ---------------------------------------------------------------- notebook 04

@exercise("04.1", "campo receptivo teórico do Mistral 7B", "um número (tokens)")
def _mistral_receptive_field(answer):
    layers, window = 32, 4096
    # cada camada olha W-1 tokens para trás; L camadas somam L*(W-1) (+1, o próprio token) ≈ L*W
    expected = layers * window
    return _judge_number(answer, expected, 0.002, [
        (window, "isso é o alcance de UMA camada; a informação anda uma janela a mais a cada camada."),
        (layers + window, "as camadas não somam uma janela só: cada uma estende o alcance por mais W tokens."),
        (window ** 2, "não é W², é o número de camadas vezes W."),
    ])


@exercise("04.2", "máscara de janela deslizante", "uma função f(n, w) -> tensor bool [n, n] (True = pode olhar)")
def _sliding_window_mask(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    for n, w in ((6, 3), (10, 4), (5, 1), (7, 7), (4, 10)):
        got = answer(n, w)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva a máscara."
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (n, n):
            return False, f"para n={n} a função deve devolver um tensor [n, n]."
        if got.dtype != torch.bool:
            return False, "devolva um tensor bool (True onde a consulta pode olhar a chave), não números."
        i = torch.arange(n)[:, None]
        j = torch.arange(n)[None, :]
        if (got & (j > i)).any():
            return False, "a consulta i está olhando chaves do futuro (j > i): a máscara também é causal."
        if not got.diagonal().all():
            return False, "cada token deve poder olhar a si mesmo (a diagonal é True)."
        ref = (j <= i) & (i - j < w)
        if not torch.equal(got, ref):
            if torch.equal(got, (j <= i) & (i - j <= w)):
                return False, "erro de um: a janela tem w tokens contando o próprio, então i - j < w."
            return False, f"com n={n}, w={w} a máscara não confere: a consulta i vê as chaves i-w+1 .. i."
    return True, "correto!"


@exercise("04.3", "massa de atenção no primeiro token",
          "uma função f(attn) -> float, attn com formato [lote, cabeças, consultas, chaves]")
def _attention_mass_on_first(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(4)
    for b, h, n in ((1, 3, 8), (2, 4, 12)):
        scores = torch.randn(b, h, n, n, generator=gen) * 2
        scores[..., 0] += 3  # um "sumidouro" artificial na chave 0
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        expected = attn[:, :, 1:, 0].mean().item()
        got = answer(attn.clone())
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva a fração."
        try:
            got = _number(got)
        except _WrongType as exc:
            return False, f"Tipo errado: {exc}."
        if math.isclose(got, expected, rel_tol=1e-4):
            continue
        if math.isclose(got, attn[..., 0].mean().item(), rel_tol=1e-4):
            return False, ("você incluiu a primeira consulta, que só pode olhar a si mesma (massa 1 por definição): "
                           "comece da segunda consulta.")
        if math.isclose(got, attn[..., 0].sum().item(), rel_tol=1e-4):
            return False, "pedimos a média (uma fração entre 0 e 1), não a soma."
        return False, "o valor não confere: é attn[..., q, 0] com a média sobre lote, cabeças e consultas q >= 1."
    return True, "correto!"


# ---------------------------------------------------------------- notebook 00

_ZEROGPU_HINTS = {
    "module_cuda": "nada de GPU no escopo do módulo: crie o pipeline (com a GPU) dentro da função que gera, "
                   "e guarde-o numa variável global para a próxima chamada.",
    "no_gpu_function": "a função que usa a GPU precisa do decorador do pacote `spaces`.",
    "spaces_import_order": "o pacote `spaces` tem de ser importado antes de qualquer coisa que toque em CUDA.",
    "gpu_duration": "o número de tokens vem da interface; diga ao decorador quantos segundos pedir "
                    "(um número, ou uma função dos mesmos argumentos).",
}


@exercise("00.1", "consertar um app.py para o ZeroGPU", "o código do app.py corrigido, como texto (str)")
def _fix_zerogpu_app(answer):
    import ast

    from .zerogpu import LintInputError, canonical_name, gpu_functions_use_cuda, import_aliases, lint_source

    if not isinstance(answer, str):
        return False, f"Tipo errado: esperava o código do app.py como texto (str), recebi {type(answer).__name__}."
    try:
        findings = lint_source(answer)
    except LintInputError as exc:
        return False, f"o Python não consegue ler o seu código: {exc}"
    if findings:
        first = findings[0]
        return False, (f"o linter ainda acusa {len(findings)} problema(s); o primeiro é [{first.rule}] na linha "
                       f"{first.line}. Dica: {_ZEROGPU_HINTS[first.rule]}")
    tree = ast.parse(answer)
    aliases = import_aliases(tree)
    calls = {canonical_name(n.func, aliases) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    if "transformers.pipeline" not in calls:
        return False, "o linter passa, mas o app deixou de gerar texto: ele ainda precisa do `pipeline`."
    if not gpu_functions_use_cuda(answer):
        return False, ("o linter passa, mas o app não usa mais a GPU: o pipeline deve ir para a GPU "
                       "(dentro da função decorada, não no escopo do módulo).")
    return True, "correto! Nenhum achado do linter, e a GPU só é usada dentro da função decorada."


@exercise("00.2", "duração calculada para @spaces.GPU",
          "uma função estimar(prompt, max_new_tokens) -> segundos (int)")
def _zerogpu_duration(answer):
    import inspect

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    try:
        inspect.signature(answer).bind(prompt="oi", max_new_tokens=8)
    except TypeError:
        return False, ("o `spaces` chama a função de duração com os MESMOS argumentos da função decorada, "
                       "inclusive pelo nome: ela precisa aceitar `prompt` e `max_new_tokens`.")
    except ValueError:
        pass  # sem assinatura legível (função embutida): confere só pelos resultados
    for tokens in (7, 100, 1000, 3000, 8):
        expected = min(120, math.ceil(10 + 0.05 * tokens))
        got = answer("Uma pergunta qualquer", tokens)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva os segundos."
        if got != answer(prompt="Uma pergunta qualquer", max_new_tokens=tokens):
            return False, "a função deve dar o mesmo resultado com argumentos por posição e por nome."
        if isinstance(got, bool) or not isinstance(got, int):
            return False, f"devolva um número inteiro de segundos (veio {type(got).__name__}). Dica: math.ceil."
        if got == expected:
            continue
        raw = 10 + 0.05 * tokens
        if got in (math.floor(raw), round(raw)) and got != math.ceil(raw):
            return False, "arredonde para cima: pedir menos segundos do que o necessário faz a chamada ser abortada."
        if got > 120:
            return False, "falta o teto: nunca peça mais que 120 s (pedidos longos perdem prioridade na fila)."
        return False, f"com max_new_tokens={tokens} o valor não confere: 10 s fixos + 0,05 s por token."
    return True, "correto!"


@exercise("00.3", "cota consumida por uma chamada xlarge", "um número (segundos de cota)")
def _zerogpu_quota(answer):
    # duration=45, size="xlarge", a função roda de fato 30 s: a cota desconta o tempo efetivo, em dobro no xlarge
    return _judge_number(answer, 2 * 30, 1e-6, [
        (2 * 45, "a cota desconta o tempo que a função de fato usou, não a duração pedida."),
        (30.0, "faltou o custo do tamanho: `xlarge` consome cota em dobro."),
        (45.0, "45 s é a duração pedida; a cota desconta o tempo efetivo, com o fator do `xlarge`."),
    ])


# ---- notebook 03

def _fill_map(sizes, budget, strict=False, backfill=False):
    """Mapa de referência (e variantes erradas comuns) para o exercício 03.1."""
    out, used, full = {}, 0.0, False
    for name, size in sizes.items():
        fits = (used + size < budget) if strict else (used + size <= budget)
        if fits and (backfill or not full):
            out[name] = "cpu"
            used += size
        else:
            out[name] = "disk"
            full = True
    return out


@exercise("03.1", "mapa de dispositivos para um orçamento",
          "uma função f(tamanhos_mb, orcamento_mb) -> dict {módulo: 'cpu' ou 'disk'}")
def _device_map_budget(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    cases = [
        ({"embed": 100.0, "l0": 10.0, "l1": 10.0, "l2": 10.0, "head": 5.0}, 125.0),
        ({"a": 5.0, "b": 5.0, "c": 5.0}, 10.0),
        ({"a": 50.0, "b": 1.0}, 0.0),
        ({"a": 1.0, "b": 2.0, "c": 3.0}, 1000.0),
        ({"grande": 200.0, "pequeno": 1.0}, 100.0),
    ]
    for sizes, budget in cases:
        got = answer(dict(sizes), budget)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva o dict."
        if not isinstance(got, dict):
            return False, f"devolva um dict {{módulo: dispositivo}}, não {type(got).__name__}."
        if set(got) != set(sizes):
            return False, "o mapa deve ter exatamente os módulos do dict de entrada, nem mais nem menos."
        bad = [v for v in got.values() if v not in ("cpu", "disk")]
        if bad:
            return False, f"os valores devem ser 'cpu' ou 'disk' (veio {bad[0]!r})."
        if got == _fill_map(sizes, budget):
            continue
        on_cpu = sum(sizes[n] for n, v in got.items() if v == "cpu")
        if on_cpu > budget:
            return False, "o que ficou na CPU passa do orçamento: some os tamanhos em ordem e pare quando estourar."
        if got == _fill_map(sizes, budget, backfill=True):
            return False, ("depois do primeiro módulo que não coube, todos vão para o disco: o accelerate preenche "
                           "em ordem e não volta atrás para encaixar módulos menores.")
        if got == _fill_map(sizes, budget, strict=True):
            return False, "um módulo que cabe exatamente no que sobra ainda cabe: compare com <=, não <."
        return False, "o mapa não confere: percorra os módulos na ordem do dict, acumulando os tamanhos."
    return True, "correto! É a regra do infer_auto_device_map com um dispositivo: em ordem, sem voltar atrás."


@exercise("03.2", "segundos por token para copiar um 7B fp16 pela PCIe", "um número (segundos, float)")
def _pcie_seconds(answer):
    size = 12.55 * 2**30  # bytes (GiB -> bytes)
    expected = size / 12e9
    return _judge_number(answer, expected, 0.01, [
        (12.55 / 12, "GiB não é GB: 12,55 GiB = 12,55 × 2³⁰ bytes, e a banda está em 10⁹ bytes por segundo."),
        (size * 8 / 12e9, "a banda já está em bytes por segundo: não multiplique por 8."),
        (12e9 / size, "é o contrário: bytes a copiar divididos pela banda."),
    ])


@exercise("03.3", "pre-hook que alinha as entradas",
          "uma função f(module, args, kwargs) -> (args, kwargs)")
def _align_inputs(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(3)
    for device, dtype, in_dtype in (("meta", torch.bfloat16, torch.float32), ("cpu", torch.float32, torch.float16)):
        module = torch.nn.Linear(4, 4).to(device=device, dtype=dtype)
        x = torch.randn(2, 4, generator=gen).to(in_dtype)
        ids = torch.arange(3)
        cos, sin = torch.randn(3, generator=gen).to(in_dtype), torch.randn(3, generator=gen).to(in_dtype)
        mask = torch.ones(3, dtype=torch.bool)
        out = answer(module, (x, ids), {"position_embeddings": (cos, sin), "attention_mask": mask,
                                        "use_cache": True, "layer_idx": 3})
        if out is None:
            return False, "a função ainda devolve None: devolva a tupla (args, kwargs)."
        if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], dict)):
            return False, "devolva uma tupla (args, kwargs), com kwargs um dict (é o que o pre-hook com with_kwargs devolve)."
        args, kwargs = out
        if not isinstance(args, (tuple, list)) or len(args) != 2:
            return False, "args deve continuar sendo uma tupla com as mesmas duas entradas."
        if not all(isinstance(t, torch.Tensor) for t in (args[0], args[1], kwargs.get("attention_mask"))):
            return False, "as entradas que eram tensores devem continuar sendo tensores."
        if args[0].device.type != device or args[1].device.type != device or kwargs["attention_mask"].device.type != device:
            return False, "todo tensor precisa ir para o dispositivo do peso (module.weight.device)."
        if args[1].dtype != torch.int64 or kwargs["attention_mask"].dtype != torch.bool:
            return False, ("inteiros (ids de tokens) e booleanos (máscaras) não podem mudar de dtype: converta só os "
                           "de ponto flutuante (t.is_floating_point()).")
        if args[0].dtype != dtype:
            return False, "os tensores de ponto flutuante devem ir para o dtype do peso (module.weight.dtype)."
        pe = kwargs.get("position_embeddings")
        if not isinstance(pe, (tuple, list)) or len(pe) != 2 or not all(isinstance(t, torch.Tensor) for t in pe):
            return False, "position_embeddings deve continuar sendo uma tupla (cos, sin) de tensores."
        if any(t.device.type != device or t.dtype != dtype for t in pe):
            return False, ("os tensores dentro de tuplas (position_embeddings = (cos, sin)) também precisam ser "
                           "alinhados: trate tuplas e listas recursivamente.")
        if kwargs.get("use_cache") is not True or kwargs.get("layer_idx") != 3:
            return False, "o que não é tensor (True, 3) deve passar intacto."
        if device == "cpu" and not torch.equal(args[0], x.to(dtype)):
            return False, "os valores mudaram: só o dispositivo e o dtype deveriam mudar."
    return True, "correto! É o que o AlignDevicesHook do accelerate faz antes de cada forward."


# ---- notebook 08

@exercise("08.1", "maior contexto do Llama-2-13B em NF4 + DQ numa T4",
          "um inteiro (tokens, múltiplo de 1024)")
def _t4_13b_context(answer):
    from .planner import LLAMA2_13B_CONFIG, plan_memory

    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        return False, f"Tipo errado: esperava um inteiro (tokens), recebi {type(answer).__name__}."
    if answer <= 0 or answer % 1024:
        return False, "use um múltiplo de 1024 maior que zero (1024, 2048, 3072, ...)."

    def fits(n):
        return plan_memory(LLAMA2_13B_CONFIG, hardware="colab_t4", context_tokens=n, formats=("nf4-dq",),
                           name="Llama-2-13B")["nf4-dq"].verdict == "gpu"

    if not fits(answer):
        return False, ("com esse contexto o NF4 + DQ já não cabe inteiro na GPU (veredito do planejador diferente de "
                       "'gpu'): o cache KV cresce linearmente com o contexto. Tente menos.")
    if fits(answer + 1024):
        return False, "ainda cabe mais: com 1024 tokens a mais o veredito continua 'gpu'. Procure o maior."
    return True, "correto! O que limita o contexto na T4 é o cache KV, não os pesos em 4 bits."


@exercise("08.2", "bits por peso do NF4 com dupla quantização", "um número (bits por peso, float)")
def _nf4_dq_bits(answer):
    expected = 4 + 8 / 64 + 32 / (64 * 256)
    return _judge_number(answer, expected, 1e-5, [
        (4.0, "4 bits é só o código de cada peso: falta o custo do absmax de cada bloco de 64."),
        (4 + 32 / 64, "isso é o NF4 sem dupla quantização (absmax em fp32 por bloco); com ela o absmax vira 8 bits."),
        (4 + 8 / 64, "quase: o absmax de 8 bits precisa de uma constante fp32 por bloco de 256 absmax (2º nível)."),
        (4 + 8 / 64 + 32 / 256, "o 2º nível tem uma constante fp32 a cada 256 BLOCOS (256 × 64 pesos), não a cada 256 pesos."),
    ])


@exercise("08.3", "tokens de cache KV que cabem numa T4 com o 7B em NF4", "um número (tokens)")
def _t4_kv_tokens(answer):
    per_token = 2 * 32 * 32 * 128 * 2  # K e V, camadas, cabeças KV, dimensão, bytes do fp16
    expected = (15 - 3.5 - 1.5) * 2**30 / per_token
    return _judge_number(answer, expected, 0.01, [
        (expected * 2, "faltou o fator 2: o cache guarda as chaves E os valores."),
        (expected / 2, "o cache está em fp16: 2 bytes por elemento, não 4."),
        ((15 - 3.5) * 2**30 / per_token, "faltou descontar a reserva de 1,5 GiB (contexto CUDA e ativações)."),
        ((15 - 3.5 - 1.5) * 1e9 / per_token, "GiB é 2³⁰ bytes, não 10⁹."),
    ])


# ---- notebook 06

@exercise("06.1", "teto de tokens/s de um 7B em INT4 a 50 GB/s", "um número (tokens/s, float)")
def _decode_bound_int4(answer):
    bits_per_weight = 4 + 16 / 32           # 4 bits + uma escala fp16 por bloco de 32
    bytes_per_token = 7e9 * bits_per_weight / 8
    expected = 50e9 / bytes_per_token
    return _judge_number(answer, expected, 0.01, [
        (50e9 / (7e9 * 4 / 8), "faltou o custo da escala: cada bloco de 32 pesos guarda também 16 bits de escala."),
        (50e9 / (7e9 * bits_per_weight), "cuidado com a unidade: bits por peso viram bytes dividindo por 8."),
        (50e9 / (7e9 * 2), "isso é o teto em fp16 (2 bytes por peso); o modelo está em INT4."),
        (50e9 / (7e9 * 4), "isso é o teto em fp32 (4 bytes por peso); o modelo está em INT4."),
    ])


def _as_numpy(value):
    import numpy as np

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


@exercise("06.2", "DynamicQuantizeLinear (uint8, uma escala por tensor)",
          "uma função f(x) -> (q uint8, escala, ponto_zero)")
def _dynamic_quantize_linear(answer):
    import numpy as np

    from .ort import dynamic_quantize_uint8

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    rng = np.random.default_rng(6)
    cases = {"misto": rng.standard_normal((4, 16)).astype(np.float32) * 3,
             "só positivos": np.abs(rng.standard_normal((3, 8))).astype(np.float32) + 0.5,
             "só negativos": -np.abs(rng.standard_normal((3, 8))).astype(np.float32) - 0.5,
             "com outlier": np.concatenate([rng.standard_normal(30), [80.0]]).astype(np.float32)}
    for name, x in cases.items():
        got = answer(x.copy())
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva (q, escala, ponto_zero)."
        if not (isinstance(got, tuple) and len(got) == 3):
            return False, "a função deve devolver uma tupla com três itens: (q, escala, ponto_zero)."
        q, scale, zero_point = got
        q = _as_numpy(q)
        ref_q, ref_scale, ref_zp = dynamic_quantize_uint8(x)
        if q.shape != x.shape:
            return False, f"q deve ter o formato de x {x.shape}, veio {q.shape}."
        if q.dtype != np.uint8:
            return False, f"q deve ser uint8 (veio {q.dtype}). Dica: .astype(np.uint8) depois de limitar a [0, 255]."
        try:
            scale, zero_point = float(_as_numpy(scale)), int(_as_numpy(zero_point))
        except (TypeError, ValueError):
            return False, "a escala deve ser um número e o ponto-zero um inteiro."
        if name in ("só positivos", "só negativos") and not math.isclose(scale, ref_scale, rel_tol=1e-4):
            return False, (f"no caso '{name}' a escala não confere: a faixa SEMPRE inclui o zero "
                           "(use min(0, x.min()) e max(0, x.max())), para o zero ser representado sem erro.")
        if math.isclose(scale, (max(0, x.max()) - min(0, x.min())) / 256, rel_tol=1e-4):
            return False, "uint8 tem 256 valores, mas 255 degraus entre 0 e 255: divida a faixa por 255."
        if not math.isclose(scale, ref_scale, rel_tol=1e-4):
            return False, f"no caso '{name}' a escala não confere: (max(0, máx) - min(0, mín)) / 255."
        if zero_point != ref_zp:
            return False, f"no caso '{name}' o ponto-zero não confere: é o inteiro mais próximo de -min(0, mín) / escala."
        if np.abs(q.astype(np.int64) - ref_q).max() > 1:
            return False, f"no caso '{name}' os valores de q não conferem: q = round(x / escala) + ponto_zero, limitado a [0, 255]."
        if (q.astype(np.int64) != ref_q).mean() > 0.01:
            return False, "quase lá: arredonde com np.rint (metades vão para o par), como o ONNX manda."
    return True, "correto! Repare no caso com outlier: quase todos os valores caem em poucos degraus."


@exercise("06.3", "um par da instrução VPMADDUBSW (u8 x s8, soma saturada em 16 bits)",
          "uma função f(a1, w1, a2, w2) -> int")
def _vpmaddubsw_pair(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    cases = [(3, 5, 7, -2), (255, 127, 255, 127), (255, -128, 255, -128), (200, 100, 10, 5), (255, 127, 0, 99),
             (130, -90, 250, -120), (0, 0, 0, 0)]
    for a1, w1, a2, w2 in cases:
        got = answer(a1, w1, a2, w2)
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva o inteiro."
        try:
            got = int(_as_numpy(got))
        except (TypeError, ValueError):
            return False, f"devolva um inteiro (veio {type(got).__name__})."
        raw = a1 * w1 + a2 * w2
        expected = max(-32768, min(32767, raw))
        if got == expected:
            continue
        if got == raw:
            return False, "faltou a saturação: o resultado cabe em 16 bits com sinal, então é limitado a [-32768, 32767]."
        clip16 = lambda v: max(-32768, min(32767, v))
        if got == clip16(clip16(a1 * w1) + clip16(a2 * w2)) and got != expected:
            return False, "a saturação vale para a SOMA do par, não para cada produto separado."
        if got == max(-32767, min(32767, raw)):
            return False, "o piso de um inteiro de 16 bits com sinal é -32768, não -32767."
        return False, f"para a1={a1}, w1={w1}, a2={a2}, w2={w2} o valor não confere: some os dois produtos e limite a 16 bits."
    return True, "correto! É por isso que 2 x 255 x 127 = 64770 vira 32767 e o INT8 por canal quebra."


# ---- notebook 07

@exercise("07.1", "maior valor finito do fp16", "um número")
def _fp16_max(answer):
    return _judge_number(answer, 65504.0, 1e-9, [
        (65535.0, "65535 é o maior uint16 (inteiro sem sinal); o fp16 tem 5 bits de expoente e 10 de mantissa."),
        (32767.0, "32767 é o maior int16; o fp16 é ponto flutuante: (2 - 2^-10) x 2^15."),
        (65536.0, "2^16 já não é finito em fp16: o maior é um pouco menor, (2 - 2^-10) x 2^15."),
        (float(torch.finfo(torch.bfloat16).max), "esse é o teto do bf16 (8 bits de expoente); pedimos o fp16."),
    ])


@exercise("07.2", "ganho de velocidade a partir de tempos medidos",
          "uma função f(tempos_eager, tempos_compilado) -> float (quantas vezes mais rápido)")
def _speedup_from_timings(answer):
    import statistics

    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    cases = [([10.0, 10.2, 9.9, 55.0, 10.1], [5.0, 5.1, 4.9, 5.0, 30.0]),
             ([8.0, 8.0, 8.0], [2.0, 2.0, 2.0]),
             ([20.0, 21.0, 19.0, 20.5], [10.0, 10.5, 9.5, 100.0])]
    for eager, compiled in cases:
        got = answer(list(eager), list(compiled))
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva o ganho."
        try:
            got = _number(got)
        except _WrongType as exc:
            return False, f"Tipo errado: {exc}."
        expected = statistics.median(eager) / statistics.median(compiled)
        if math.isclose(got, expected, rel_tol=1e-6):
            continue
        if math.isclose(got, 1 / expected, rel_tol=1e-6):
            return False, "está invertido: ganho = tempo do eager / tempo do compilado (maior que 1 se o compilado é mais rápido)."
        if math.isclose(got, statistics.mean(eager) / statistics.mean(compiled), rel_tol=1e-6):
            return False, "a média se deixa levar por um pico isolado (outro processo, coleta de lixo); use outra estatística."
        if math.isclose(got, min(eager) / min(compiled), rel_tol=1e-6):
            return False, "o mínimo é uma escolha defensável, mas o curso usa a estatística de measure_latency (median_ms)."
        return False, "o valor não confere: compare a mesma estatística robusta dos dois lados."
    return True, "correto! A mediana ignora o pico de 55 ms e o de 30 ms."


@exercise("07.3", "conferência de saídas (diferença máxima e concordância do argmax)",
          "uma função f(ref, outro) -> (diferença_máxima, fração_mesmo_argmax)")
def _output_agreement(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(7)
    ref = torch.randn(2, 6, 11, generator=gen) * 4
    other = ref + torch.randn(2, 6, 11, generator=gen) * 0.05
    other[0, 0] = ref[0, 0].flip(-1)          # uma posição escolhe outro token
    other[1, 2, 3] += 3.0                      # uma diferença grande que pode não mudar o argmax
    expected_diff = float((ref - other).abs().max())
    expected_agree = float((ref.argmax(-1) == other.argmax(-1)).float().mean())
    got = answer(ref.clone(), other.clone())
    if got is None:
        return False, "a função ainda devolve None: escreva o corpo e devolva a tupla."
    if not (isinstance(got, tuple) and len(got) == 2):
        return False, "devolva uma tupla com dois números: (diferença máxima, fração de posições com o mesmo argmax)."
    try:
        diff, agree = _number(got[0]), _number(got[1])
    except _WrongType as exc:
        return False, f"Tipo errado: {exc}."
    if math.isclose(diff, float((ref - other).max()), rel_tol=1e-6) and not math.isclose(diff, expected_diff, rel_tol=1e-6):
        return False, "a diferença máxima é em valor ABSOLUTO: use .abs() antes do max."
    if not math.isclose(diff, expected_diff, rel_tol=1e-5):
        return False, "a diferença máxima não confere: é o maior |ref - outro| entre todos os elementos."
    if math.isclose(agree, float((ref.argmax(0) == other.argmax(0)).float().mean()), rel_tol=1e-6) and not math.isclose(agree, expected_agree, rel_tol=1e-6):
        return False, "o argmax é sobre o vocabulário, a ÚLTIMA dimensão (dim=-1)."
    if math.isclose(agree, expected_agree * ref.shape[0] * ref.shape[1], rel_tol=1e-6):
        return False, "pedimos a fração (entre 0 e 1), não a contagem de posições."
    if not math.isclose(agree, expected_agree, rel_tol=1e-5):
        return False, "a concordância não confere: compare argmax(-1) dos dois e tire a média das posições iguais."
    return True, "correto!"


# ---- notebook 02

def _reference_hessian(batches):
    """H = 2/N Σ x xᵀ sobre todos os tokens dos lotes (referência dos exercícios 02.1)."""
    x = torch.cat([b.reshape(-1, b.shape[-1]).double() for b in batches])
    return 2 * x.T @ x / x.shape[0], x.shape[0]


@exercise("02.1", "acumulação do Hessiano do GPTQ",
          "uma função f(H, n, x) -> (H, n), com x [lote, tokens, entradas] e H [entradas, entradas]")
def _hessian_accumulation(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(2)
    batches = [torch.randn(2, 5, 6, generator=gen), torch.randn(1, 7, 6, generator=gen) * 3,
               torch.randn(3, 2, 6, generator=gen)]
    H, n = None, 0
    for k, x in enumerate(batches):
        got = answer(H, n, x.clone())
        if got is None:
            return False, "a função ainda devolve None: escreva o corpo e devolva (H, n)."
        if not (isinstance(got, tuple) and len(got) == 2):
            return False, "devolva uma tupla (H, n): a média atualizada e o total de tokens vistos."
        H, n = got
        if not isinstance(H, torch.Tensor) or tuple(H.shape) != (6, 6):
            return False, "H deve ser um tensor [entradas, entradas] (aqui 6x6): junte lote e tokens numa dimensão só."
        expected, expected_n = _reference_hessian(batches[: k + 1])
        if isinstance(n, torch.Tensor):
            n = n.item()
        if n == k + 1 or n == sum(b.shape[0] for b in batches[: k + 1]):
            return False, "n conta TOKENS (lote x tokens de cada lote), não lotes nem sequências."
        if n != expected_n:
            return False, "n deve ser o total de tokens vistos até agora (o anterior mais os do lote novo)."
        H64 = H.double()
        if torch.allclose(H64, expected, rtol=1e-4, atol=1e-5):
            continue
        if torch.allclose(H64, expected / 2, rtol=1e-4, atol=1e-5):
            return False, "faltou o fator 2 de H = 2XᵀX (a derivada segunda de ‖XWᵀ − XŴᵀ‖²)."
        if torch.allclose(H64, expected * expected_n, rtol=1e-4, atol=1e-5) or \
           torch.allclose(H64, expected * expected_n / 2, rtol=1e-4, atol=1e-5):
            return False, "isso é a soma; pedimos a MÉDIA por token: reescale o H anterior antes de somar o lote novo."
        return False, (f"depois do lote {k + 1}, H não confere: H deve ser 2/N Σ x xᵀ sobre TODOS os N tokens vistos "
                       "(o H anterior pesa n/(n + novos)).")
    return True, "correto!"


@exercise("02.2", "memória de um Llama-2-7B em w3g64", "um número (GiB)")
def _llama2_7b_w3g64_gib(answer):
    from .quantization import LLAMA2_7B_CONFIG, bits_per_weight, llm_weight_memory_gib

    expected = llm_weight_memory_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 3))
    return _judge_number(answer, expected, 0.005, [
        (llm_weight_memory_gib(LLAMA2_7B_CONFIG, 3.0), "faltou o custo das escalas e dos pontos-zero: são bits por peso a mais."),
        (llm_weight_memory_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 0)),
         "faltou o ponto-zero de 3 bits de cada grupo (a escala fp16 você contou)."),
        (llm_weight_memory_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 16)),
         "o ponto-zero é um inteiro de 3 bits, não um número de 16 bits."),
        (llm_weight_memory_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 3)) * 2**30 / 1e9,
         "a resposta deve estar em GiB (2³⁰ bytes), não em GB (10⁹)."),
        (llm_weight_memory_gib(LLAMA2_7B_CONFIG, bits_per_weight(3, 64, 16, 3), other_bits=32),
         "embeddings, lm_head e normas ficam em fp16 (16 bits), não em fp32."),
    ])


@exercise("02.3", "dobra da escala do AWQ numa RMSNorm",
          "uma função f(g, W, s) -> (g_novo, W_novo), com g [d], W [saídas, d] e s [d]")
def _awq_fold(answer):
    if not callable(answer):
        return False, f"Tipo errado: esperava uma função, recebi {type(answer).__name__}."
    gen = torch.Generator().manual_seed(3)
    d, out = 8, 5
    g = torch.rand(d, generator=gen) + 0.5
    W = torch.randn(out, d, generator=gen)
    s = torch.rand(d, generator=gen) * 3 + 0.2
    x = torch.randn(4, d, generator=gen)
    got = answer(g.clone(), W.clone(), s.clone())
    if got is None:
        return False, "a função ainda devolve None: escreva o corpo e devolva (g_novo, W_novo)."
    if not (isinstance(got, tuple) and len(got) == 2) or not all(isinstance(t, torch.Tensor) for t in got):
        return False, "devolva uma tupla de dois tensores: (g_novo, W_novo)."
    g_new, W_new = got
    if tuple(g_new.shape) != (d,) or tuple(W_new.shape) != (out, d):
        return False, "g_novo deve ter o formato de g [d] e W_novo o de W [saídas, d]; s multiplica as COLUNAS de W."
    y, y_new = (x * g) @ W.T, (x * g_new) @ W_new.T
    if not torch.allclose(y_new, y, rtol=1e-4, atol=1e-5):
        if torch.allclose(W_new, W * s, rtol=1e-5):
            return False, "W_novo está certo, mas a saída mudou: a norma tem de compensar, dividindo g pela mesma escala."
        return False, "a saída mudou: em ponto flutuante, (x ⊙ g_novo) W_novoᵀ deve ser igual a (x ⊙ g) Wᵀ."
    if torch.allclose(W_new, W / s, rtol=1e-5):
        return False, "a saída não muda, mas está invertido: os canais com s > 1 devem ficar MAIORES em W_novo."
    if not torch.allclose(W_new, W * s, rtol=1e-5):
        return False, "a saída não muda, mas W_novo não é W com cada coluna j multiplicada por s_j."
    return True, "correto!"
