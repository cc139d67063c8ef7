"""Linter de Spaces ZeroGPU: análise estática (AST, sem executar nada) de uma pasta de Space.

    python -m course_utils.zerogpu lint PASTA_DO_SPACE   (ou um arquivo .py)

No ZeroGPU o processo principal do Space roda sem GPU, num modo que emula o CUDA: pôr o modelo em "cuda" no
escopo do módulo é registrado e refeito na GPU de verdade, que é emprestada a cada chamada de uma função decorada
com `@spaces.GPU`, num processo filho. Daí as regras (nome -> o que acusa):
- `module_cuda`: no escopo do módulo, o que precisa de uma GPU de verdade: ler o estado da GPU
  (`torch.cuda.get_device_properties`, `mem_get_info`, ...), chamar o driver (`torch.cuda.Stream`, `set_device`, ...),
  `torch.compile`, e funções do módulo que fazem isso chamadas na importação (posicionamento não é achado);
- `no_gpu_function`: nenhuma função decorada com `@spaces.GPU`;
- `spaces_import_order`: `import spaces` depois de algo que já inicializou CUDA (ou ausente);
- `gpu_duration` (aviso): geração possivelmente longa numa função `@spaces.GPU` sem `duration=`;
- `gpu_lazy_load` (aviso): a função `@spaces.GPU` carrega o modelo (a documentação desaconselha);
- `requirements_torch`: `requirements.txt` ausente, sem torch, com torch < 2.8 ou só-CPU;
- `gradio_version`: gradio < 4 (`sdk_version` do README ou `requirements.txt`);
- `readme_front_matter`: README.md sem front matter YAML válido (sdk, sdk_version, app_file, python_version).

Códigos de saída: 0 sem erros (avisos só contam com --strict), 1 com erros, 2 uso errado da linha de comando,
3 caminho inexistente, 4 erro de sintaxe num .py, 5 arquivo que não é Python (ou ilegível),
6 pasta vazia ou sem nenhum .py.

Módulos: `findings` (regras, severidades, códigos de saída), `ast_facts` (o que a AST diz), `code_rules`
(regras de um .py), `file_rules` (requirements.txt e README.md), `space` (a pasta inteira), `cli`.
"""

from .ast_facts import canonical_name, gpu_functions, import_aliases
from .cli import exit_code, format_report, main
from .code_rules import (
    DEFAULT_DURATION_S,
    LONG_GENERATION,
    gpu_functions_use_cuda,
    lint_source,
    module_cuda_placements,
)
from .file_rules import lint_readme, lint_requirements
from .findings import (
    ERROR,
    EXIT_EMPTY,
    EXIT_FINDINGS,
    EXIT_NOT_FOUND,
    EXIT_NOT_PYTHON,
    EXIT_OK,
    EXIT_SYNTAX,
    EXIT_USAGE,
    RULES,
    WARNING,
    Finding,
    LintInputError,
)
from .space import lint_folder, lint_path

__all__ = [
    "DEFAULT_DURATION_S", "ERROR", "EXIT_EMPTY", "EXIT_FINDINGS", "EXIT_NOT_FOUND", "EXIT_NOT_PYTHON", "EXIT_OK",
    "EXIT_SYNTAX", "EXIT_USAGE", "LONG_GENERATION", "RULES", "WARNING", "Finding", "LintInputError",
    "canonical_name", "exit_code", "format_report", "gpu_functions", "gpu_functions_use_cuda", "import_aliases",
    "lint_folder", "lint_path", "lint_readme", "lint_requirements", "lint_source", "main", "module_cuda_placements",
]
