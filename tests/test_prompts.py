"""The paper's prompt templates, rendering, hashes and user templates from files."""

import pytest

from oddoneout.agents.parsing import parse_answer
from oddoneout.agents.prompts import (
    PAPER_LLM_PROMPT,
    PAPER_MLLM_PROMPT,
    PromptTemplate,
    load_prompt,
)
from oddoneout.errors import InputError
from oddoneout.provenance import hash_text

CAPTIONS = ["A dog chases a ball on a beach.", "A man screams as a car crashes.", "Children laugh at a clown."]


def test_llm_prompt_renders_the_captions_in_the_order_shown():
    text = PAPER_LLM_PROMPT.render(CAPTIONS)
    positions = [text.index(caption) for caption in CAPTIONS]
    assert positions == sorted(positions)
    for n, caption in enumerate(CAPTIONS, start=1):
        assert f"Video {n}: {caption}" in text
    assert "{" not in text and "}" not in text


def test_paper_prompts_say_what_the_paper_asks():
    llm, mllm = PAPER_LLM_PROMPT.text.lower(), PAPER_MLLM_PROMPT.text.lower()
    for text in (llm, mllm):
        assert "video n is noticeably different from the other two" in text
        assert "explain" in text
        assert "emotion" in text
    assert "emotional tone" in llm and "ignore the order" in llm
    assert "describe" in mllm and "frames" in mllm
    assert PAPER_LLM_PROMPT.mode == "text" and PAPER_MLLM_PROMPT.mode == "video"


def test_the_answer_form_the_prompts_ask_for_parses():
    form = 'Answer in exactly this form: "Video N is noticeably different from the other two."'
    assert form in PAPER_LLM_PROMPT.text and form in PAPER_MLLM_PROMPT.text
    for n in (1, 2, 3):
        assert parse_answer(f"Video {n} is noticeably different from the other two.").choice == n - 1


def test_video_prompt_renders_without_captions():
    assert PAPER_MLLM_PROMPT.render() == PAPER_MLLM_PROMPT.text
    with pytest.raises(InputError, match="takes no captions"):
        PAPER_MLLM_PROMPT.render(CAPTIONS)


@pytest.mark.parametrize(
    ("captions", "message"),
    [
        (None, "sequence of 3 captions"),
        ("one caption", "sequence of 3 captions"),
        (CAPTIONS[:2], "needs 3 captions, got 2"),
        (CAPTIONS + ["extra"], "needs 3 captions, got 4"),
        (["a", "  ", "c"], "caption 2 is empty"),
        (["a", None, "c"], "caption 2"),
    ],
)
def test_text_prompt_refuses_wrong_captions(captions, message):
    with pytest.raises(InputError, match=message):
        PAPER_LLM_PROMPT.render(captions)


def test_hash_is_sha256_of_name_and_text_and_changes_with_either():
    assert PAPER_LLM_PROMPT.hash == hash_text("paper_llm", PAPER_LLM_PROMPT.text)
    assert len(PAPER_LLM_PROMPT.hash) == 64
    assert PAPER_LLM_PROMPT.hash != PAPER_MLLM_PROMPT.hash
    renamed = PromptTemplate("other", PAPER_LLM_PROMPT.text, "text")
    edited = PromptTemplate("paper_llm", PAPER_LLM_PROMPT.text + " ", "text")
    assert len({PAPER_LLM_PROMPT.hash, renamed.hash, edited.hash}) == 3


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        ("{caption_1} {caption_2}", "text", r"\{caption_3\} must appear once, found 0"),
        ("{caption_1} {caption_1} {caption_2} {caption_3}", "text", r"\{caption_1\} must appear once, found 2"),
        ("{caption_1} {caption_2} {caption_3} {frames}", "text", "unknown placeholder"),
        ("Look at {caption_1}", "video", "takes no placeholders"),
        ("{caption_1!r} {caption_2} {caption_3}", "text", "plain names"),
        ("an unclosed { brace", "video", "malformed placeholder"),
        ("anything", "audio", "mode must be one of"),
        ("   ", "video", "text is empty"),
    ],
)
def test_templates_with_wrong_placeholders_are_refused(text, mode, message):
    with pytest.raises(InputError, match=message):
        PromptTemplate("mine", text, mode)


def test_literal_braces_are_kept():
    template = PromptTemplate("json", 'Reply as {{"video": N}}: {caption_1} | {caption_2} | {caption_3}', "text")
    assert template.render(["a", "b", "c"]) == 'Reply as {"video": N}: a | b | c'


def test_load_builtin_prompts_by_name():
    assert load_prompt("paper_llm") is PAPER_LLM_PROMPT
    assert load_prompt("llm") is PAPER_LLM_PROMPT
    assert load_prompt("mllm", mode="video") is PAPER_MLLM_PROMPT
    with pytest.raises(InputError, match="text prompt is needed"):
        load_prompt("mllm", mode="text")
    with pytest.raises(InputError, match="unknown prompt 'nonsense'"):
        load_prompt("nonsense")


def test_load_txt_template_infers_the_mode(tmp_path):
    text_file = tmp_path / "short_llm.txt"
    text_file.write_text("Which differs?\n1: {caption_1}\n2: {caption_2}\n3: {caption_3}\n", encoding="utf-8")
    template = load_prompt(text_file)
    assert (template.name, template.mode) == ("short_llm", "text")
    assert template.render(["x", "y", "z"]) == "Which differs?\n1: x\n2: y\n3: z"
    video_file = tmp_path / "short_mllm.txt"
    video_file.write_text("Which of the three videos differs?", encoding="utf-8")
    assert load_prompt(str(video_file)).mode == "video"


def test_load_toml_template(tmp_path):
    path = tmp_path / "custom.toml"
    path.write_text(
        'name = "terse"\nmode = "text"\ntext = """\nOdd one out?\n{caption_1}\n{caption_2}\n{caption_3}\n"""\n',
        encoding="utf-8",
    )
    template = load_prompt(path)
    assert template.name == "terse" and template.mode == "text"
    assert template.text == "Odd one out?\n{caption_1}\n{caption_2}\n{caption_3}"
    assert template.hash == hash_text("terse", template.text)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.toml", "text = ", "not valid TOML"),
        ("notext.toml", 'name = "x"', "needs a string 'text'"),
        ("extra.toml", 'text = "hi"\ncolour = "red"', "unknown key"),
        ("wrongmode.toml", 'text = "{caption_1}"\nmode = "text"', r"caption_2"),
        ("bad.txt", "{caption_1} {caption_2}", r"caption_3"),
    ],
)
def test_bad_prompt_files_are_refused_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_prompt(path)
    assert name in str(info.value)


def test_missing_prompt_file(tmp_path):
    with pytest.raises(InputError, match="prompt file not found"):
        load_prompt(tmp_path / "absent.txt")
