"""A figura do modelo de execução do ZeroGPU: processo principal sem GPU, pedidos, processo com GPU, devolução."""

# Cada faixa: (rótulo da linha, [(início, duração, texto, cor)]). Tempos em unidades arbitrárias: é um esquema.
TIMELINE = [
    ("processo principal\n(CPU, sem GPU)", [
        (0.0, 4.4, "import spaces; carrega os pesos;\n.to(\"cuda\") emulado (registrado)", "tab:blue"),
        (4.4, 1.3, "empacota os\ntensores", "tab:cyan"),
        (5.7, 10.5, "Gradio no ar: fila, interface, funções sem GPU", "lightsteelblue"),
    ]),
    ("agendador\n(cota e fila)", [
        (6.0, 1.0, "pedido 1:\nduration", "tab:orange"),
        (12.0, 0.7, "pedido 2", "tab:orange"),
    ]),
    ("processo filho\n(fork, com GPU)", [
        (7.0, 1.4, "pesos\npara a GPU", "tab:purple"),
        (8.4, 2.4, "@spaces.GPU\nroda", "tab:green"),
        (10.8, 1.1, "resultado\n(pickle)", "tab:gray"),
        (12.7, 2.2, "reaproveitado:\nsó roda", "tab:green"),
        (14.9, 0.6, "", "tab:gray"),
    ]),
]
RELEASES = [11.9, 15.5]  # a GPU volta para o conjunto compartilhado


def plot_zerogpu_timeline(ax=None):
    """Desenha o esquema (não é medida) de duas chamadas a um Space ZeroGPU e devolve o eixo."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(11, 3.6))
    for row, (_label, spans) in enumerate(reversed(TIMELINE)):
        for start, width, text, color in spans:
            ax.broken_barh([(start, width)], (row - 0.35, 0.7), facecolors=color, edgecolor="black", linewidth=0.5)
            if text:
                ax.text(start + width / 2, row, text, ha="center", va="center", fontsize=7.5)
    for x in RELEASES:
        ax.axvline(x, color="tab:red", linestyle="--", linewidth=1)
        ax.text(x, len(TIMELINE) - 0.45, "GPU devolvida", color="tab:red", fontsize=7.5, ha="center")
    ax.set_yticks(range(len(TIMELINE)), [label for label, _ in reversed(TIMELINE)], fontsize=8)
    ax.set_xticks([])
    ax.set_xlabel("tempo (esquema, fora de escala) →")
    ax.set_title("ZeroGPU: a GPU é emprestada por chamada de uma função @spaces.GPU")
    ax.set_xlim(-0.2, 16.2)
    ax.set_ylim(-0.6, len(TIMELINE) - 0.2)
    return ax
