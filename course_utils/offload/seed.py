"""O offload do material antigo do curso, com os seus bugs, para o notebook 03 rodá-lo e mostrá-los."""

import os

import torch

# ---------------------------------------------------------------- o material antigo, com os seus bugs (notebook 03)
# Cópia do código do material antigo do curso (docstrings e comentários encurtados), para a lição rodá-lo e
# mostrar cada bug. Não use: a versão certa é `jit_offload`, acima.

class SeedCPUOffloadModule(torch.nn.Module):
    """O `CPUOffloadModule` do material antigo: embrulha um módulo e o leva à GPU a cada forward."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.cpu_device = torch.device("cpu")
        self.gpu_device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def forward(self, *args, **kwargs):
        self.module.to(self.gpu_device)
        args_gpu = [a.to(self.gpu_device) if isinstance(a, torch.Tensor) else a for a in args]
        kwargs_gpu = {k: v.to(self.gpu_device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        outputs = self.module(*args_gpu, **kwargs_gpu)
        self.module.to(self.cpu_device)      # bug: copia de volta pesos que não mudaram
        torch.cuda.empty_cache()             # a cada chamada
        if isinstance(outputs, torch.Tensor):
            outputs = outputs.to(self.gpu_device)
        elif isinstance(outputs, tuple):
            outputs = tuple(o.to(self.gpu_device) if isinstance(o, torch.Tensor) else o for o in outputs)
        return outputs


def seed_apply_cpu_offloading(model, layer_indices=None):
    """O `apply_cpu_offloading` do material antigo (o ramo automático, que precisa de GPU, foi encurtado)."""
    if layer_indices is None and not torch.cuda.is_available():
        return model                           # "Se não houver GPU, não aplicar offloading"
    if layer_indices is None:
        layer_indices = range(len(model.layers) // 2, len(model.layers)) if hasattr(model, "layers") else []
    if hasattr(model, "layers"):               # bug: num causal LM do HF os blocos estão em model.model.layers
        for i in layer_indices:
            if i < len(model.layers):
                model.layers[i] = SeedCPUOffloadModule(model.layers[i])
    return model


# A função do material antigo que trazia o DiskOffloadModule, copiada sem mudar nada (só os espaços no fim das
# linhas em branco saíram). Ela devolvia a classe dentro de
# uma string (`example_code = """ ...`), mas a docstring da classe abre com `"""` e fecha essa string: o que vem
# depois vira código Python, e o trecho nem compila (SyntaxError). `SeedDiskOffloadModule`, abaixo, é a classe
# como ela estava escrita ali, agora como código, para a lição rodá-la.
SEED_DISK_OFFLOADING_EXAMPLE = '''def disk_offloading_example():
    """
    Exemplo de código para offloading para disco.
    """
    example_code = """
    import torch
    import os

    class DiskOffloadModule(torch.nn.Module):
        """
        Wrapper para offloading de módulos para disco.
        """
        def __init__(self, module, temp_dir="./.offload_temp"):
            super().__init__()
            self.module = module
            self.temp_dir = temp_dir
            self.module_path = os.path.join(temp_dir, "module.pt")

            # Criar diretório temporário
            os.makedirs(temp_dir, exist_ok=True)

            # Salvar módulo em disco
            self._save_to_disk()

        def _save_to_disk(self):
            """Salva o módulo em disco e libera memória."""
            torch.save(self.module.state_dict(), self.module_path)
            # Limpar parâmetros para liberar memória
            for param in self.module.parameters():
                param.data = torch.zeros(1)  # Placeholder mínimo

        def _load_from_disk(self):
            """Carrega o módulo do disco."""
            self.module.load_state_dict(torch.load(self.module_path))

        def forward(self, *args, **kwargs):
            # Carregar módulo do disco
            self._load_from_disk()

            # Forward pass
            outputs = self.module(*args, **kwargs)

            # Salvar módulo de volta para disco e liberar memória
            self._save_to_disk()

            return outputs
    """

    return example_code
'''


class SeedDiskOffloadModule(torch.nn.Module):
    """O `DiskOffloadModule` do material antigo, como código (lá ele estava numa string que não compila)."""

    def __init__(self, module, temp_dir="./.offload_temp"):
        super().__init__()
        self.module = module
        self.temp_dir = temp_dir
        self.module_path = os.path.join(temp_dir, "module.pt")   # bug: o mesmo arquivo para todo módulo embrulhado
        os.makedirs(temp_dir, exist_ok=True)
        self._save_to_disk()

    def _save_to_disk(self):
        torch.save(self.module.state_dict(), self.module_path)
        for param in self.module.parameters():
            param.data = torch.zeros(1)        # bug: o marcador muda o formato do parâmetro

    def _load_from_disk(self):
        self.module.load_state_dict(torch.load(self.module_path))  # falha: formato [1] contra o do arquivo

    def forward(self, *args, **kwargs):
        self._load_from_disk()
        outputs = self.module(*args, **kwargs)
        self._save_to_disk()                   # bug: regrava no disco, a cada forward, pesos que não mudaram
        return outputs
