"""Juízes dos exercícios do notebook 07 (TensorRT), registrados com @exercise."""

import math

import torch

from . import _judge_number, _number, _WrongType, exercise


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
