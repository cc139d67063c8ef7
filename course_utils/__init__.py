"""Pacote auxiliar do curso "LLMs rápidos em hardware modesto".

Os notebooks ensinam; aqui fica só o que mais de um notebook (ou os testes) precisa:
carregar modelos, medir, os algoritmos ensinados, registrar resultados e exercícios.
Importe dos módulos: `from course_utils.models import load_model`.
"""

__version__ = "0.1.0"
