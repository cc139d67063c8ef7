# Corretor em lote num container (para professores em macOS ou Windows: o sandbox do kernel é só Linux).
#
#   docker build -t curso-corrigir .
#   docker run --rm -v "$PWD/entregas:/entregas:ro" -v "$PWD/correcao:/correcao" \
#       curso-corrigir run -n 04 /entregas --out /correcao --smoke --jobs 2
#
# Testes secretos (os seus, no formato de grading/): monte a pasta e passe --spec-dir:
#   docker run ... -v "$PWD/meus-testes:/testes:ro" curso-corrigir run -n 04 /entregas --out /correcao --spec-dir /testes
# O container já separa o kernel da sua máquina. Para o corretor também isolar cada kernel dentro dele
# (namespaces), acrescente: --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined
# (veja docs/correcao_em_lote.md, "Container").
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg \
    CURSO_GRADING_DIR=/opt/curso/grading
WORKDIR /opt/curso
COPY requirements.txt pyproject.toml README.md LICENSE ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -r requirements.txt
COPY course_utils ./course_utils
COPY grading ./grading
# instalação normal (não editável): o kernel de cada entrega recebe uma cópia só leitura deste pacote
RUN pip install ".[runner]" && rm -rf course_utils build *.egg-info \
    && python -c "from course_utils.grader.orchestrate import prepare_model_cache; prepare_model_cache()"
WORKDIR /correcao
ENTRYPOINT ["curso-corrigir"]
CMD ["--help"]
