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
