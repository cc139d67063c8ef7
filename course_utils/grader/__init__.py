"""Correção em lote das entregas dos alunos (professores), dividida por assunto.

Processos e módulos:
- o processo do professor: `cli` (linha de comando), `orchestrate` (lote, retomada, shards), `submissions`
  (achar e ler as entregas), `assignments` (testes ocultos, qual tarefa), `prepare` (células de coleta),
  `judge` (notas, fora do kernel) e `report` (notas.csv, feedback, relatorio.html);
- o processo executor de cada entrega: `execute` (papermill com saídas e tempo limitados);
- o lançador do kernel: `sandbox` (namespaces, cgroup, uid sem privilégio, limites);
- o kernel do aluno: `kernel` (arma a coleta antes de qualquer código do aluno) e `collect` (a coleta).
`spec` é o que os arquivos de testes ocultos (grading/*.py) importam; `wire` é o formato dos dados entre o
kernel e o corretor. Este arquivo não importa nada: o kernel carrega só o que precisa.
"""
