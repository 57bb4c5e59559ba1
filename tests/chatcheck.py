"""Chat conversations and checks shared by the chat-template tests (a conversation with a system message,
tools, an assistant tool call, a tool result and a final answer; the assistant spans a mask must cover,
derived independently of ``{% generation %}``)."""

from __future__ import annotations

from typing import Any

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather of a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city."}},
                "required": ["city"],
            },
        },
    }
]
SYSTEM = "You answer briefly."
QUESTION = "What is the weather in Paris?"
CALL_REASONING = "I should call the weather tool."
TOOL_RESULT = "sunny, 21 degrees"
ANSWER = "It is sunny in Paris."
ANSWER_REASONING = "The tool says it is sunny."


def conversation(arguments: Any = None) -> list[dict[str, Any]]:
    """System, user, assistant tool call, tool result, final assistant answer."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": CALL_REASONING,
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments or {"city": "Paris"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": TOOL_RESULT},
        {"role": "assistant", "content": ANSWER, "reasoning_content": ANSWER_REASONING},
    ]



def expected_assistant_spans(tokenizer: Any, messages: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    """What each assistant message adds after the generation prompt of the messages before it."""
    full = tokenizer.apply_chat_template(messages, tools=TOOLS, tokenize=False, **kwargs)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(
            messages[:index], tools=TOOLS, tokenize=False, add_generation_prompt=True, **kwargs
        )
        upto = tokenizer.apply_chat_template(messages[: index + 1], tools=TOOLS, tokenize=False, **kwargs)
        assert upto.startswith(prompt), "the generation prompt is not a prefix of the rendered assistant turn"
        assert full.startswith(upto), "rendering later messages changed the earlier ones"
        spans.append(upto[len(prompt) :].rstrip("\n"))
    return spans


def masked_runs(tokenizer: Any, messages: list[dict[str, Any]], **kwargs: Any) -> tuple[str, list[tuple[str, list[int]]]]:
    """The rendered text and, for each run of mask 1s, (the text its tokens cover, its ids)."""
    text = tokenizer.apply_chat_template(messages, tools=TOOLS, tokenize=False, **kwargs)
    out = tokenizer.apply_chat_template(
        messages,
        tools=TOOLS,
        return_dict=True,
        return_assistant_tokens_mask=True,
        tokenizer_kwargs={"return_offsets_mapping": True},
        **kwargs,
    )
    ids, mask, offsets = out["input_ids"], out["assistant_masks"], out["offset_mapping"]
    assert len(mask) == len(ids)
    runs: list[tuple[str, list[int]]] = []
    start = None
    for position, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = position
        elif not bit and start is not None:
            runs.append((text[offsets[start][0] : offsets[position - 1][1]], ids[start:position]))
            start = None
    return text, runs
