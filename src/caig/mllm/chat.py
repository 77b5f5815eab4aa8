"""The one chat template used for training and generation (vicuna style, as LLaVA-v1.6-vicuna).

``<s>[system ]USER: <image>\\n{question} ASSISTANT: {answer}</s>``. The template, system prompt included, is
stored as the processor's Jinja ``chat_template`` and saved with every model: pre-training, the reward model,
PCPO's rollouts and log-probs, and the PM server all build their text through ``render`` from the model's own
processor, so a model is always trained and served with the same prompt. The system prompt enters once, when
the base model is built or loaded (``caig.mllm.build``, from ``mllm.system_prompt``). The image placeholder is
the processor's ``<image>`` token, which the processor expands to the image's feature count.
"""

from __future__ import annotations

import json
from typing import Any

MARK = "{#- caig chat template v2 -#}"  # tells our saved templates from a checkpoint's own


def chat_template(system: str = "") -> str:
    """The Jinja chat template with ``system`` as the system line of every conversation ("" for none)."""
    return (
        MARK
        + "{{ bos_token }}"
        + (f"{{{{ {json.dumps(system, ensure_ascii=False)} }}}} " if system else "")
        + "{% for m in messages %}"
        "{% if m['role'] == 'user' %}USER: "
        "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n"
        "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %} "
        "{% elif m['role'] == 'assistant' %}ASSISTANT: "
        "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
        "{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{% endif %}{{ eos_token }}"
        "{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )


def is_ours(template: Any) -> bool:
    """Whether a processor's ``chat_template`` was written by ``chat_template`` (a saved caig model)."""
    return isinstance(template, str) and template.startswith(MARK)


def messages(
    question: str, answer: str | None = None, image: bool = True, image_last: bool = False
) -> list[dict[str, Any]]:
    """The conversation of one example: a user turn (image + question), then the answer if given.

    ``image_last`` puts the image after the question (``USER: {question}\n<image>\n ASSISTANT:``), so the
    image sits at the same distance from the final token whatever the question's length.
    """
    content: list[dict[str, Any]] = [{"type": "text", "text": question}]
    if image and image_last:
        content = [{"type": "text", "text": question + "\n"}, {"type": "image"}]
    elif image:
        content.insert(0, {"type": "image"})
    conversation: list[dict[str, Any]] = [{"role": "user", "content": content}]
    if answer is not None:
        conversation.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return conversation


def render(
    processor: Any, question: str, answer: str | None = None, image: bool = True, image_last: bool = False
) -> str:
    """The prompt text (answer None: ends with ``ASSISTANT:``) or the full training text, through the
    processor's own template (system prompt included)."""
    if not is_ours(processor.chat_template):
        raise ValueError(
            "the processor carries no caig chat template; load models with caig.mllm.build (load_model or "
            "build_or_load), which set it"
        )
    conversation = messages(question, answer, image, image_last)
    return processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=answer is None)


def split_prompt_answer(processor: Any, question: str, answer: str, image: bool = True) -> tuple[str, str]:
    """(prompt, completion) so that prompt + completion is the full text and the prompt is the generation one."""
    prompt = render(processor, question, None, image)
    full = render(processor, question, answer, image)
    if not full.startswith(prompt):
        raise ValueError("chat template renders the prompt differently in training and generation")
    return prompt, full[len(prompt) :]
