"""Hardware: a memória de cada ambiente (presets do Colab, notebook sem GPU, ZeroGPU) e a desta máquina."""

import math
import os
import shutil
from dataclasses import dataclass, replace

GIB = 2**30
# A reserva da GPU: memória que fica fora do alocador do PyTorch (o contexto CUDA, os módulos de kernels que a CUDA
# carrega sob demanda e as bibliotecas como o cuBLAS). Um valor só, descontado uma vez: inteiro nos presets (que dão a
# memória total); na máquina detectada, a memória livre medida já não conta o que o contexto ocupa agora, e só o
# que falta para a reserva é descontado (`detect_hardware`). O notebook 08 mede o contexto numa GPU.
GPU_RESERVE_GIB = 0.5

# ---------------------------------------------------------------- hardware

@dataclass(frozen=True)
class Hardware:
    """Memória de um ambiente, em GiB. gpu_gib=0 (ou None) quer dizer sem GPU; cpu_gib=None, RAM não informada."""
    name: str
    gpu_gib: float | None
    cpu_gib: float | None
    gpu_bf16: bool = True           # a GPU faz bf16 rápido? (a T4 não)
    gpu_reserved_gib: float = GPU_RESERVE_GIB   # contexto CUDA + kernels: VRAM fora do alocador do PyTorch
    cpu_reserved_gib: float = 1.0   # sistema, Python, torch e transformers importados
    disk_gib: float | None = None   # None: não limita o offload para o disco
    note: str = ""
    gpu_outside_gib: float | None = None   # medido na detecção: memória da GPU fora do alocador (contexto CUDA)

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpu_gib)


# A T4 do Colab: o total que o CUDA informa ao processo (o "total capacity" do PyTorch), não os 16 GB que a NVIDIA
# anuncia: com o ECC ligado sobram 15 GiB, e desses o driver fica com uma parte (docs/referencias.md#colab-t4).
T4_CUDA_TOTAL_GIB = 14.74

PRESETS = {
    "colab_t4": Hardware("Colab grátis (T4)", T4_CUDA_TOTAL_GIB, 12.7, gpu_bf16=False,
                         note="T4 de 16 GB, 14,74 GiB visíveis para o CUDA; 12,7 GB de RAM (o que o Colab mostra); sem bf16"),
    "colab_l4": Hardware("Colab (L4)", 22.5, 53.0, note="L4 de 24 GB, RAM alta"),
    "colab_a100": Hardware("Colab (A100 40 GB)", 40.0, 83.5, note="A100 de 40 GB, RAM alta"),
    "laptop_cpu": Hardware("Notebook sem GPU, 16 GiB de RAM", None, 16.0, cpu_reserved_gib=4.0,
                           note="o sistema e o navegador ficam com uns 4 GiB"),
    # docs/referencias.md#zerogpu: em 2026 o ZeroGPU passou a fatias de RTX Pro 6000 Blackwell (large 48, xlarge 96 GB).
    "zerogpu": Hardware("Space ZeroGPU (fatia large, 48 GB, 2026)", 48e9 / GIB, None,
                        note="fatia 'large' de uma RTX Pro 6000 Blackwell (docs/referencias.md, 2026); sem offload: "
                             "o modelo precisa caber na fatia"),
}



def detect_hardware(disk_path: str | None = None) -> Hardware:
    """A máquina onde o código roda agora: GPU (memória livre) e RAM disponível, em GiB.

    Usa a memória LIVRE, não a total: é ela que o modelo vai encontrar ao carregar. Com a variável de ambiente
    COURSE_HARDWARE com o nome de um preset (o perfil `t4` do runner põe "colab_t4"), a máquina é vista como aquele
    hardware: memória limitada à do preset, e bf16 só se o preset tiver.
    """
    measured = _measure_this_machine(disk_path)
    emulated = os.environ.get("COURSE_HARDWARE")
    if not emulated:
        return measured
    if emulated not in PRESETS:
        raise ValueError(f"COURSE_HARDWARE={emulated!r} não é um preset; use um de {sorted(PRESETS)}.")
    preset = PRESETS[emulated]
    gpu_gib, reserve = measured.gpu_gib, measured.gpu_reserved_gib
    if measured.gpu_gib and preset.gpu_gib and preset.gpu_gib < measured.gpu_gib:
        gpu_gib, reserve = preset.gpu_gib, preset.gpu_reserved_gib   # a memória TOTAL do preset: a reserva inteira
    where = "n" + measured.name if measured.name.startswith("esta máquina") else f"em {measured.name}"
    return replace(measured, name=f"{preset.name}, emulada {where}",
                   gpu_gib=None if not (measured.gpu_gib and preset.gpu_gib) else gpu_gib, gpu_reserved_gib=reserve,
                   cpu_gib=min(measured.cpu_gib, preset.cpu_gib) if preset.cpu_gib else measured.cpu_gib,
                   gpu_bf16=measured.gpu_bf16 and preset.gpu_bf16,
                   note=f"COURSE_HARDWARE={emulated}: memória livre medida agora, limitada à do preset")


def _measure_this_machine(disk_path: str | None) -> Hardware:
    import torch

    gpu_gib, gpu_name, bf16, outside = None, None, True, None
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()   # cria o contexto CUDA, se ainda não existe
        gpu_gib = free / GIB
        # o que está ocupado e não é do alocador do PyTorch: o contexto (e outros processos, se houver)
        outside = max(0.0, (total - free - torch.cuda.memory_reserved()) / GIB)
        gpu_name = torch.cuda.get_device_name(0)
        bf16 = torch.cuda.get_device_capability(0) >= (8, 0)  # bf16 rápido a partir da Ampere
    cpu_gib = _available_ram_gib()
    disk_gib = shutil.disk_usage(disk_path or os.getcwd()).free / GIB
    name = f"esta máquina ({gpu_name} + CPU)" if gpu_name else "esta máquina (só CPU)"
    # a RAM disponível já desconta o sistema; sobra reservar o próprio processo (~0,5 GiB)
    # a memória livre já não conta o contexto que existe agora: da reserva, só falta o resto
    reserve = 0.0 if gpu_gib is None else max(0.0, GPU_RESERVE_GIB - outside)
    return Hardware(name, gpu_gib, cpu_gib, gpu_bf16=bf16, cpu_reserved_gib=0.5, gpu_reserved_gib=reserve,
                    disk_gib=disk_gib, note="memória livre medida agora", gpu_outside_gib=outside)


def _available_ram_gib() -> float:
    try:
        import psutil

        return psutil.virtual_memory().available / GIB
    except ImportError:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / GIB
    raise RuntimeError("Não consegui ler a RAM disponível (nem psutil nem /proc/meminfo).")


def resolve_hardware(hardware, gpu_gib, cpu_gib, disk_gib) -> Hardware:
    if isinstance(hardware, str):
        if hardware not in PRESETS:
            raise ValueError(f"Hardware desconhecido {hardware!r}. Use um de: {', '.join(PRESETS)} "
                             "(ou passe gpu_gib=/cpu_gib=, ou um Hardware).")
        hw = PRESETS[hardware]
    elif isinstance(hardware, Hardware):
        hw = hardware
    elif hardware is None:
        hw = None if (gpu_gib is not None or cpu_gib is not None) else detect_hardware()
    else:
        raise TypeError(f"hardware deve ser o nome de um preset, um Hardware ou None, não {type(hardware).__name__}.")
    for name, value in (("gpu_gib", gpu_gib), ("cpu_gib", cpu_gib), ("disk_gib", disk_gib)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            raise ValueError(f"{name} precisa ser um número de GiB maior ou igual a zero, não {value!r} "
                             "(memória negativa não existe).")
    if hw is None:
        hw = Hardware("hardware informado", gpu_gib or None, cpu_gib, note="valores passados à mão")
    changes = {k: v for k, v in (("gpu_gib", gpu_gib), ("cpu_gib", cpu_gib), ("disk_gib", disk_gib)) if v is not None}
    if changes:
        hw = replace(hw, **changes)
    return hw
