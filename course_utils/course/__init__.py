"""O que faz o curso funcionar e o aluno nunca lê: gerar os notebooks, executá-los, empacotar para GPU.

    python -m course_utils.course notebooks      # notebooks/src/*.py -> notebooks/*.ipynb (make notebooks)
    python -m course_utils.course run --profile offline|gpu|t4 [--smoke] [--only NB]
    python -m course_utils.course bundle ...     # pacote offline para uma máquina de GPU sem internet
"""
