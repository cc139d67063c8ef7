"""TensorRT no Colab: qual Torch-TensorRT instalar para o torch que já está lá, e se ele de fato importa.

O Torch-TensorRT é compilado contra UMA versão do torch e UMA versão da CUDA. No PyPI fica só a build
da CUDA mais nova (a 2.11.0 do PyPI é a da CUDA 13.0, que puxa `tensorrt-cu13`); as builds para CUDA 12.x
ficam no índice do PyTorch (`https://download.pytorch.org/whl/cu128`, ...), com a versão local `+cu128`.
O Colab de 2026-08 tem torch 2.11.0+cu128 (docs/referencias.md#colab-tensorrt): instalar o do PyPI ali
troca a CUDA por baixo do torch. `tensorrt_install_plan` escolhe a build a partir de `torch.__version__`
e `torch.version.cuda`; é uma função pura, testada em tests/test_tensorrt.py contra várias builds.

O pacote `tensorrt-cu12` é só uma fachada: as bibliotecas vêm de `tensorrt-cu12-libs` e
`tensorrt-cu12-bindings`, pacotes de código-fonte que, na instalação, baixam as rodas de verdade do índice da NVIDIA
(pypi.nvidia.com; docs/referencias.md#colab-tensorrt). Por isso o plano NUNCA usa `--no-deps`, `probe_tensorrt`
decide se o TensorRT existe importando-o (uma instalação pela metade aparece em `find_spec` mas falha no import), e
`tensorrt_missing_reason` diz, quando ele falta, o que não rodou e por quê.

`measure_engine` é a bancada que o notebook 07 usa para todo engine já montado (Torch-TensorRT, TensorRT a partir
do ONNX, o provedor TensorRT do ONNX Runtime): a primeira saída, a latência mediana e a conferência contra o PyTorch.
"""

import re
from dataclasses import dataclass, field

PYTORCH_INDEX = "https://download.pytorch.org/whl/{tag}"
# Builds do Torch-TensorRT publicadas para cada versão do torch (notas das versões, docs/referencias.md#colab-tensorrt):
# a primeira CUDA da lista é a do PyPI; as outras só no índice do PyTorch.
TORCH_TENSORRT_BUILDS = {
    "2.11": ("cu130", "cu126", "cu128", "cu129"),
    "2.12": ("cu130",),
}


@dataclass(frozen=True)
class InstallPlan:
    """O que instalar (ou por que não instalar). `pip_args` vai depois de `pip install`; vazio = não instale."""

    pip_args: tuple = ()
    reason: str = ""
    cuda_tag: str | None = None
    notes: tuple = field(default_factory=tuple)

    @property
    def installs(self) -> bool:
        return bool(self.pip_args)

    def command(self) -> str:
        """A linha de comando equivalente, para mostrar ao aluno."""
        return "pip install " + " ".join(self.pip_args) if self.pip_args else f"(nada a instalar: {self.reason})"


def cuda_tag(cuda_version: str | None) -> str | None:
    """'12.8' -> 'cu128'; None (torch só de CPU) -> None."""
    if not cuda_version:
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", str(cuda_version).strip())
    if not match:
        raise ValueError(f"Versão da CUDA não reconhecida: {cuda_version!r} (esperava algo como '12.8').")
    return f"cu{match.group(1)}{match.group(2)}"


def tensorrt_install_plan(torch_version: str, cuda_version: str | None) -> InstallPlan:
    """Qual Torch-TensorRT (e TensorRT) instalar para este torch, sem trocar o torch nem a CUDA.

    torch_version: `torch.__version__` ("2.11.0+cu128"); cuda_version: `torch.version.cuda` ("12.8" ou None).
    Devolve um InstallPlan: `pip_args` com a versão exata e o índice certo, com as dependências (a biblioteca
    do TensorRT vem por elas), ou `reason` dizendo por que não há o que instalar.
    """
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:[.+].*)?", str(torch_version).strip())
    if not match:
        return InstallPlan(reason=f"versão do torch não reconhecida ({torch_version!r})")
    major_minor, base = f"{match.group(1)}.{match.group(2)}", ".".join(match.groups())
    tag = cuda_tag(cuda_version)
    if tag is None:
        return InstallPlan(reason="este torch é só de CPU (torch.version.cuda é None): o TensorRT precisa de GPU "
                                  "NVIDIA")
    builds = TORCH_TENSORRT_BUILDS.get(major_minor)
    if builds is None:
        return InstallPlan(reason=f"o curso não conhece uma build do Torch-TensorRT para o torch {major_minor}",
                           cuda_tag=tag)
    if tag not in builds:
        return InstallPlan(reason=f"não há Torch-TensorRT {major_minor} para CUDA {cuda_version} "
                                  f"(há: {', '.join(builds)})", cuda_tag=tag)
    trt_package = f"tensorrt-cu{tag[2:4]}"
    if tag == builds[0]:  # a build do PyPI
        args = (f"torch-tensorrt=={base}",)
    else:
        args = (f"torch-tensorrt=={base}+{tag}", "--extra-index-url", PYTORCH_INDEX.format(tag=tag))
    notes = (f"puxa {trt_package} (fachada) e, por ele, {trt_package}-libs do índice da NVIDIA: sem --no-deps",)
    return InstallPlan(pip_args=args, cuda_tag=tag, notes=notes)


def torch_constraint(torch_version: str) -> str:
    """A linha de restrição do pip que prende o torch instalado: '2.11.0+cu128' -> 'torch==2.11.0+cu128'.

    Passada com `pip install ... -c arquivo`, impede que uma dependência do Torch-TensorRT troque o torch (e a CUDA
    dele) por outro: se a build pedida precisar de outro torch, o pip falha em vez de substituí-lo.
    """
    version = str(torch_version).strip()
    if not re.fullmatch(r"\d+\.\d+\.\d+(?:[.+][\w.]+)?", version):
        raise ValueError(f"versão do torch não reconhecida: {torch_version!r}")
    return f"torch=={version}"


def write_torch_constraint(torch_version: str, path=None):
    """Grava `torch_constraint` num arquivo (padrão: um temporário) e devolve o caminho, para `pip install -c`."""
    import tempfile
    from pathlib import Path

    path = Path(path) if path is not None else Path(tempfile.gettempdir()) / "curso-torch-constraint.txt"
    path.write_text(torch_constraint(torch_version) + "\n")
    return path


WHY_NO_TENSORRT_WHEELS = (
    "As bibliotecas do TensorRT não vêm do PyPI como rodas: tensorrt-cu12-libs e tensorrt-cu13-libs são pacotes de "
    "código-fonte que, na instalação, baixam as rodas de verdade do índice da NVIDIA (pypi.nvidia.com); numa máquina "
    "que não alcança esse índice o TensorRT não instala (o Colab alcança)."
)


def tensorrt_missing_reason(module: str, error: str | None, not_run: str, torch_version: str,
                            cuda_version: str | None) -> str:
    """Por que uma seção de TensorRT foi pulada: o que não importou (e o erro), o que por isso não rodou, de onde vêm as
    bibliotecas do TensorRT e o comando de instalação para este torch (`tensorrt_install_plan`)."""
    plan = tensorrt_install_plan(torch_version, cuda_version)
    return (f"{module} não importa ({error or 'o import falhou sem mensagem'}): {not_run}. {WHY_NO_TENSORRT_WHEELS} "
            f"Para este torch ({torch_version}, CUDA {cuda_version}): {plan.command()}")


def probe_tensorrt() -> dict:
    """Importa tensorrt e torch_tensorrt dentro de try: {'tensorrt': versão ou None, 'torch_tensorrt': ...,
    'errors': {nome: mensagem}}. Uma instalação pela metade vira um erro dito, não uma exceção no notebook."""
    found, errors = {"tensorrt": None, "torch_tensorrt": None}, {}
    for name in found:
        try:
            module = __import__(name)
            found[name] = str(getattr(module, "__version__", "?"))
        except Exception as exc:  # ImportError, OSError (libnvinfer ausente), RuntimeError...
            errors[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return {**found, "errors": errors}


def measure_engine(run, reference, build_seconds: float, repeats: int = 20, warmup: int = 3, output=None) -> dict:
    """Mede um engine já montado e confere a saída dele contra os logits de referência.

    run(): executa o engine uma vez (e devolve os logits, se `output` for None); output(): lê os logits da última
    execução (para engines que escrevem num buffer, como o contexto do TensorRT ou o io_binding do ONNX Runtime).
    Os logits podem ser tensores do torch ou arrays do numpy, do mesmo formato que `reference`.

    Roda uma vez (sem medir) para pegar a saída, depois cronometra com `measure_latency` (`warmup` execuções sem
    medir, a mediana de `repeats`, sincronizando a GPU). Devolve {"ms": mediana em ms, "build_s": build_seconds,
    "diff": maior |saída - referência|, "agree": fração das posições em que o argmax é o mesmo}.
    """
    import torch

    from .measure import _sync, measure_latency

    with torch.inference_mode():
        first = run()
    _sync()
    out = torch.as_tensor(output() if output is not None else first).detach().float().clone()
    ms = measure_latency(run, warmup=warmup, repeats=repeats)["median_ms"]
    ref = torch.as_tensor(reference).detach().to(out.device).float()
    if out.shape != ref.shape:
        raise ValueError(f"a saída do engine tem formato {tuple(out.shape)}; a referência, {tuple(ref.shape)}.")
    diff = float((out - ref).abs().max())
    agree = float((out.argmax(-1) == ref.argmax(-1)).float().mean())
    return {"ms": ms, "build_s": build_seconds, "diff": diff, "agree": agree}
