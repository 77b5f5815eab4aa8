"""The multimodal LLM stage: LLaVA-NeXT presets, prompts (chat template, f_instruct, Table 4 templates) and
e-commerce knowledge pre-training (paper section 3.2).

Stable API (the reward model and PCPO build on it):

- ``caig.mllm.build.build_or_load(MLLMConfig, world_dir=None) -> (model, processor)``: the preset's model:
  ``tiny`` built from config with a tokenizer trained on the world's text, ``llava-v1.6-7b`` loaded from
  ``MLLMConfig.model_path`` (local directory only).
- ``caig.mllm.build.load_model(dir, dtype="float32") -> (model, processor)`` and
  ``save_model(model, processor, dir)``: a directory loadable with ``from_pretrained``
  (``LlavaNextForConditionalGeneration`` + ``AutoProcessor``); ``caig mllm build --preset tiny --out DIR``
  writes one.
- ``caig.mllm.chat``: ``render(processor, question, answer=None)``, ``split_prompt_answer(...)``: the one chat
  template ``<s>USER: <image>\\n{question} ASSISTANT: {answer}</s>``.
- ``caig.mllm.instruct``: ``f_instruct(question, product_row, attributes)``, ``pm_prompt(product_row, ...)``,
  ``rm_prompt(product_row, ...)``, ``caption(product_row)``.
- ``caig.mllm.templates``: ``PM_TEMPLATES`` (8), ``RM_TEMPLATES`` (13), ``fill(template, caption)``.
- ``caig.mllm.build.make_processor(tokenizer, image_size, patch_size, grid_pinpoints=None)``: a LLaVA-NeXT
  processor (PIL image processor, our chat template) for any tokenizer and tile size.
- ``caig.mllm.encode``: ``encode_example(processor, image, question, answer, max_length)`` (labels only on
  answer tokens), ``model_image(image)`` (RGBA product images composited onto grey, as the model sees them),
  ``Collator(processor)`` (right-padding), ``prompt_inputs(processor, images, questions)`` (left-padded
  generation inputs).
- ``caig.mllm.generate``: ``generate(model, processor, images, questions, ...)`` -> list of answer strings.
- ``caig.mllm.pretrain.run_pretrain(profile, model_dir, tasks_dir, out_dir, ...)``: the SFT stage;
  ``lora_wrap(model, PretrainConfig)``: LoRA on the language model's linear layers only.
- ``caig.mllm.loss.per_example_loss(logits, labels)``: answer-token cross-entropy averaged per example.
"""
