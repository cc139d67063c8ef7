"""Dois gráficos que se repetem no curso: barras (comparar variantes) e linhas (tendências)."""

import matplotlib.pyplot as plt


def plot_bars(labels, values, title, ylabel, ax=None, fmt="{:.1f}", color="tab:blue"):
    """Barras com o valor escrito em cima de cada uma."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    bars = ax.bar([str(label) for label in labels], values, color=color)
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(fmt.format(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.margins(y=0.15)
    return ax


def plot_lines(x, series: dict, title, xlabel, ylabel, ax=None, logy=False, marker="o"):
    """Uma linha por item de `series` ({rótulo: valores}), todas sobre o mesmo eixo x."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for label, values in series.items():
        ax.plot(x, values, marker=marker, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
