"""Fine-tuning the database's own open_clip model on its caption-image pairs (`vstore finetune`), and the
model switch that re-embeds every stored vector with the result (`vstore reembed`)."""
