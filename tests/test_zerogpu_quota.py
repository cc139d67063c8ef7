"""O pedido de uma chamada @spaces.GPU e as chamadas que cabem numa cota (course_utils.zerogpu.quota), conferidos
contra a função do pacote `spaces` instalado."""

import pytest

from course_utils.zerogpu.installed import spaces_facts, spaces_requested_seconds
from course_utils.zerogpu.quota import calls_using_full_request, quota_multiplier, request_report, requested_seconds

GPUS = spaces_facts()["gpus"]


@pytest.mark.parametrize("gpu", GPUS, ids=[g["model"] for g in GPUS])
@pytest.mark.parametrize("size", ["large", "xlarge"])
@pytest.mark.parametrize("duration", [1, 3, 5, 45, 59, 60, 61, 119, 120, 300, 3600])
def test_requested_seconds_is_what_the_installed_spaces_computes(gpu, size, duration):
    assert requested_seconds(duration, size, gpu["duration_factor"]) == spaces_requested_seconds(duration, size, gpu)


def test_the_duration_factor_applies_outside_xlarge_only():
    assert requested_seconds(60, "large", 1.5) == 90
    assert requested_seconds(60, "xlarge", 1.5) == 60
    assert quota_multiplier("large") == 1 and quota_multiplier("xlarge") == 2


@pytest.mark.parametrize("requested, size, quota, expected", [
    (90, "large", 300, 3),      # 3 × 90 = 270; a quarta chamada pediria 90 com 30 sobrando
    (100, "large", 300, 3),     # cabe exatamente
    (90, "large", 120, 1),
    (90, "xlarge", 120, 0),     # pedido de 90 conta 180: maior que a cota inteira
    (60, "xlarge", 2400, 20),
    (121, "large", 120, 0),
])
def test_calls_using_full_request(requested, size, quota, expected):
    assert calls_using_full_request(requested, size, quota) == expected


@pytest.mark.parametrize("call", [lambda: requested_seconds(60, "medium", 1.5), lambda: quota_multiplier("XL"),
                                  lambda: requested_seconds(0, "large", 1.5), lambda: requested_seconds(60, "large", 0),
                                  lambda: calls_using_full_request(0, "large", 300)])
def test_bad_inputs_give_messages_in_portuguese(call):
    with pytest.raises(ValueError, match="deve"):
        call()


def test_request_report_lists_each_account():
    quotas = {"sem login": 2, "gratuita": 5, "PRO": 40}
    text = request_report(60, "large", 1.5, quotas, gpu_name="GPU X")
    assert "na GPU X" in text and "pedido de 90 s" in text and "custa 90 s de cota" in text
    lines = text.splitlines()
    assert lines[-3].split()[-1] == "1" and lines[-2].split()[-1] == "3" and lines[-1].split()[-1] == "26"
    xlarge = request_report(90, "xlarge", 1.5, quotas)
    assert "pedido de 90 s" in xlarge and "custa 180 s de cota (em dobro no xlarge)" in xlarge
    assert "nenhuma: o pedido é maior que a cota inteira" in xlarge.splitlines()[-3]
