"""The tokenizer stage of a build: train a tiny tokenizer of the model type's own class (:mod:`.train`),
or shrink a real one (:mod:`.shrink`)."""
