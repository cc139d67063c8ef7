"""O vocabulário do linter: as regras, as severidades, os códigos de saída, `Finding` e `LintInputError`."""

from dataclasses import dataclass

RULES = {
    "module_cuda": "no escopo do módulo, algo que precisa de uma GPU de verdade (estado da GPU, driver, torch.compile)",
    "no_gpu_function": "nenhuma função decorada com @spaces.GPU",
    "spaces_import_order": "`import spaces` depois de inicializar CUDA (ou ausente)",
    "gpu_duration": "geração possivelmente longa sem `duration=` no @spaces.GPU",
    "gpu_lazy_load": "modelo carregado dentro da função @spaces.GPU (desaconselhado)",
    "requirements_torch": "requirements.txt sem torch ou com versão incompatível",
    "gradio_version": "gradio anterior ao 4 (o ZeroGPU exige Gradio 4+)",
    "readme_front_matter": "README.md sem front matter YAML válido",
}

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_NOT_FOUND, EXIT_SYNTAX, EXIT_NOT_PYTHON, EXIT_EMPTY = 3, 4, 5, 6

ERROR, WARNING = "erro", "aviso"


@dataclass(frozen=True)
class Finding:
    """Um problema encontrado: regra, arquivo (relativo à pasta do Space), linha e mensagem em pt-BR."""

    rule: str
    path: str
    line: int
    message: str
    severity: str = ERROR

    def __str__(self):
        return f"{self.path}:{self.line}: {self.severity} [{self.rule}] {self.message}"


class LintInputError(Exception):
    """Entrada que o linter não consegue analisar; `exit_code` diz qual caso é."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
