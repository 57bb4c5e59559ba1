"""Named special cases per family of architectures, grouped by modality.

The generic machinery (:mod:`..shrink`, :mod:`..inputs`, :mod:`..processors`) handles most
architectures from their configs and ``forward`` signatures alone.  What it cannot infer lives here,
as data or small named rules, one module per group of families:

* :mod:`.audio` — speech encoders, speech seq2seq, codecs, vocoders, text-to-speech;
* :mod:`.vision` — image/video backbones, SAM, keypoint matching, video models;
* :mod:`.detection` — detection, segmentation, depth, document layout and OCR models;
* :mod:`.size` — what keeps weights big (codebooks, vocoder upsampling, embedding tables);
* :mod:`.multimodal` — vision-language and omni models and their vision towers;
* :mod:`.text` — text, time-series and decision models.

Each module registers with the extension points of :mod:`..rules` (the generic modules read them; the
package is imported once, by :func:`..rules.load_families`):

* ``rules.family_rule(name)`` — a rule ``rule(node, ctx)`` run on every shrunk config dict;
* ``rules.model_type_values(model_type, values)`` — values set on the shrunk config of a model type
  (merged into ``rules.MODEL_TYPE_CONFIG``; conflicting values from two modules are an error);
* ``rules.input_builder(name)`` — how to build a forward argument ``name``;
* ``rules.input_fixup(name)`` — ``fixup(ctx, inputs)`` adjusting the dummy inputs of a family;
* ``rules.IMAGE_PROCESSOR_OF[model_type]`` / ``rules.FEATURE_EXTRACTOR_OF[model_type]`` —
  the model type whose processor a model type without one of its own uses.

Rules use the public helpers of :mod:`..shrink` (``ShrinkContext``, ``is_int``, ...), :mod:`..inputs`
(``InputContext``, ``build_input``) and :mod:`..configtools`.

Every rule checks that a node / model is one of its family's before touching it, so rules of
different families never interfere; each is covered by the coverage sweep and ``tests/test_families_<module>.py``.
"""

from . import audio, detection, multimodal, size, text, vision  # noqa: F401
