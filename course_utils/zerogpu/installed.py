"""O que o pacote `spaces` instalado diz sobre o ZeroGPU, lido dos arquivos dele sem executá-los."""

import ast
import importlib.util
import json
from importlib.metadata import version
from pathlib import Path


def spaces_facts() -> dict:
    """Versão, constantes de `spaces/zero/client.py` e a tabela de GPUs de `spaces/zero/configs.json`.

    `gpus` é a lista de configs.json (modelo, memória, `duration_factor`, ...): o `spaces` multiplica a duração
    pedida por `duration_factor` da GPU em que roda, exceto no tamanho `xlarge` (`zero/client.py`,
    `get_duration_seconds`).
    """
    spec = importlib.util.find_spec("spaces")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("O pacote `spaces` não está instalado: pip install spaces (ou `make env`).")
    zero = Path(spec.submodule_search_locations[0]) / "zero"
    wanted = {"TOKEN_HEADER", "DEFAULT_SCHEDULE_DURATION", "PRO_QUOTA_MINUTES"}
    tree = ast.parse((zero / "client.py").read_text(encoding="utf-8"))
    constants = {target.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name) and target.id in wanted}
    gpus = json.loads((zero / "configs.json").read_text(encoding="utf-8"))
    return {"version": version("spaces"), **constants, "gpus": gpus}



def spaces_requested_seconds(duration_s: int, size: str, gpu: dict) -> int:
    """O pedido que o `spaces` instalado calcula para `@spaces.GPU(duration=duration_s, size=size)` na GPU `gpu`.

    Roda a função do próprio pacote (`spaces/zero/client.py`, `get_duration_seconds`, arredondada como em
    `schedule`) com `gpu` (uma linha de `spaces_facts()["gpus"]`) no lugar da GPU que o driver informaria: fora do
    ZeroGPU, o pacote escolheria a primeira linha da tabela.
    """
    from datetime import timedelta
    from unittest import mock

    from spaces.zero import client, config

    with mock.patch.object(config, "get_config", lambda: gpu):
        return round(client.get_duration_seconds(timedelta(seconds=duration_s), size))
