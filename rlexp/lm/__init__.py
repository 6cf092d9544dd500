"""Language models for the RLHF family: the shipped task with a known "human"
(:mod:`rlexp.lm.task`), the character tokenizer (:mod:`rlexp.lm.tokenizer`), and
``transformers`` models with ``peft`` LoRA adapters (:mod:`rlexp.lm.model`)."""
