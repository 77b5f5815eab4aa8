"""The one chat template used for training and generation (vicuna style, as LLaVA-v1.6-vicuna).

``<s>[system ]USER: <image>\\n{question} ASSISTANT: {answer}</s>``. It is stored as the processor's Jinja
``chat_template`` so that ``processor.apply_chat_template`` renders exactly what training saw; the image
placeholder is the processor's ``<image>`` token, which the processor expands to the image's feature count.
"""

from __future__ import annotations

from typing import Any

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{{ m['content'][0]['text'] }}{% endif %} "
    "{% elif m['role'] == 'user' %}USER: "
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


def messages(
    question: str,
    answer: str | None = None,
    image: bool = True,
    system: str = "",
    image_last: bool = False,
) -> list[dict[str, Any]]:
    """The conversation of one example: optional system line, a user turn (image + question), the answer.

    ``image_last`` puts the image after the question (``USER: {question}\n<image>\n ASSISTANT:``), so the
    image sits at the same distance from the final token whatever the question's length.
    """
    content: list[dict[str, Any]] = [{"type": "text", "text": question}]
    if image and image_last:
        content = [{"type": "text", "text": question + "\n"}, {"type": "image"}]
    elif image:
        content.insert(0, {"type": "image"})
    conversation: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    conversation.append({"role": "user", "content": content})
    if answer is not None:
        conversation.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return conversation


def render(
    processor: Any,
    question: str,
    answer: str | None = None,
    image: bool = True,
    system: str = "",
    image_last: bool = False,
) -> str:
    """The prompt text (answer None: ends with ``ASSISTANT:``) or the full training text, via the template."""
    conversation = messages(question, answer, image, system, image_last)
    return processor.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=answer is None, chat_template=CHAT_TEMPLATE
    )


def split_prompt_answer(
    processor: Any, question: str, answer: str, image: bool = True, system: str = ""
) -> tuple[str, str]:
    """(prompt, completion) so that prompt + completion is the full text and the prompt is the generation one."""
    prompt = render(processor, question, None, image, system)
    full = render(processor, question, answer, image, system)
    if not full.startswith(prompt):
        raise ValueError("chat template renders the prompt differently in training and generation")
    return prompt, full[len(prompt) :]
