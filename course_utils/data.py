"""Textos originais do curso (pt-BR e inglês) para perplexidade e contexto longo.

Escritos para o curso e licenciados junto com o repositório; cada um tem mais de 9 mil
tokens do tokenizador de referência. Nada é baixado.
"""

from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
TEXTS = {"en": "texto_en.txt", "pt": "texto_pt.txt"}


def load_text(lang: str = "en") -> str:
    """O texto completo no idioma pedido ("en" ou "pt")."""
    if lang not in TEXTS:
        raise ValueError(f"Idioma {lang!r} não disponível; use um de {sorted(TEXTS)}.")
    return (DATA_DIR / TEXTS[lang]).read_text(encoding="utf-8")


def text_token_ids(tokenizer, lang: str = "en", n_tokens: int | None = None):
    """Os primeiros `n_tokens` tokens do texto, como tensor [1, n]."""
    ids = tokenizer(load_text(lang), return_tensors="pt").input_ids
    if n_tokens is not None:
        if n_tokens > ids.shape[1]:
            raise ValueError(f"O texto {lang!r} tem só {ids.shape[1]} tokens; pedidos {n_tokens}.")
        ids = ids[:, :n_tokens]
    return ids
