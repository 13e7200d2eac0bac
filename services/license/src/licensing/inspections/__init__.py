"""事中事后监管: 双随机、一公开 inspections of licence holders, their results and consequences."""
