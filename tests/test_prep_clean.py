"""Cleaning rules, English and Chinese, as (input, expected) tables."""
import pytest

from nmt_suite.prep.clean import ScriptConverter, clean_en, clean_zh, for_reference, has_cjk, mostly_cjk

EN_CASES = [
    ("(Laughter) So we did it.", "So we did it."),
    ("We did it. (Applause)", "We did it."),
    ("The end (Laughter).", "The end."),
    ("[Music] la la", "la la"),
    ("He said (an aside [nested] here) hi", "He said hi"),
    ("Ｔｈｅ ＣＡＴ　ｓｅｅｓ ａ ｆｉｓｈ．", "The CAT sees a fish."),
    ("It's “great” and ‘fine’", "It's \"great\" and 'fine'"),
    ("It’s a dog", "It's a dog"),
    ("I think—no, I know—that", "I think - no, I know - that"),
    ("1990–2000 was a decade", "1990-2000 was a decade"),
    ("Wait…", "Wait..."),
    ("Tom &amp; Jerry &quot;live&quot;", 'Tom & Jerry "live"'),
    ("  many   spaces\there  ", "many spaces here"),
    ("zero\u200bwidth soft\u00adhyphen", "zerowidth softhyphen"),
    ("line\u2028separator and\rcarriage", "line separator and carriage"),
    ("♫ La la la ♫", "La la la"),
    ("(Applause)", ""),
    ("unbalanced (aside", "unbalanced (aside"),
]

ZH_CASES = [
    # sound and speaker notes, full- or half-width brackets, anywhere in the line
    ("（鼓掌） 我不是这个国家的公民。", "我不是这个国家的公民。"),
    ("（众人欢呼） Sebastian Seung：那我是什么？", "Sebastian Seung：那我是什么？"),
    ("(掌声）", ""),
    ("在印度的克什米尔（Kashmir)长大， 在伦敦 学艺术。", "在印度的克什米尔长大，在伦敦学艺术。"),
    ("被称作快乐时刻（注：欧美酒吧里的减价时段）的例子。", "被称作快乐时刻的例子。"),
    # subtitle line breaks go, spaces between Latin words stay
    ("所有这些好的价值 我都试图灌输到她的性格中。", "所有这些好的价值我都试图灌输到她的性格中。"),
    ("我们 用 API 来 做", "我们用API来做"),
    # full-width letters and digits become half-width
    ("ＤＮＡ检测 用了 ３个 小时", "DNA检测用了3个小时"),
    # punctuation next to Chinese is full-width; numbers, times and Latin text keep theirs
    ("他说:\"你好, 世界\"...然后走了!", "他说：“你好，世界”...然后走了！"),
    ("有1,000人在12:30到达", "有1,000人在12:30到达"),
    ("Hello, world", "Hello, world"),
    ("你用过Google?", "你用过Google？"),
    ("所以我补充说：“不，不，是真的。”", "所以我补充说：“不，不，是真的。”"),
    # ellipses
    ("等等……好吧", "等等...好吧"),
    ("等等。。。好吧", "等等...好吧"),
    ("AT&amp;T的 网络", "AT&T的网络"),
    ("音乐♫ 啦啦 ♫", "音乐啦啦"),
]

ZH_HALF_CASES = [  # HW5's behaviour: every full-width form to half-width
    ("他说：“你好，世界”！", '他说:"你好,世界"!'),
    ("（鼓掌） 好的， 谢谢。", "好的,谢谢。"),
]


@pytest.mark.parametrize("raw,expected", EN_CASES)
def test_clean_en(raw, expected):
    assert clean_en(raw) == expected


@pytest.mark.parametrize("raw,expected", ZH_CASES)
def test_clean_zh(raw, expected):
    assert clean_zh(raw) == expected


@pytest.mark.parametrize("raw,expected", ZH_HALF_CASES)
def test_clean_zh_half_width_punctuation(raw, expected):
    assert clean_zh(raw, punct="half") == expected


@pytest.mark.parametrize("line", [case[1] for case in EN_CASES + ZH_CASES])
def test_cleaning_is_idempotent(line):
    assert clean_en(clean_en(line)) == clean_en(line)
    assert clean_zh(clean_zh(line)) == clean_zh(line)


@pytest.mark.parametrize("script,raw,expected", [
    ("keep", "这个软件让我想象", "这个软件让我想象"),
    ("tw", "这个软件让我想象", "這個軟體讓我想像"),  # s2twp: Taiwan characters and phrases
    ("cn", "這個軟體讓我想像", "这个软体让我想像"),  # t2s: characters only
])
def test_script_conversion(script, raw, expected):
    assert ScriptConverter(script).convert_lines([raw, "", "abc"]) == [expected, "", "abc"]


def test_reference_lines_keep_everything_but_line_breaks():
    assert for_reference("（鼓掌） 好的，\u2028谢谢\r") == "（鼓掌） 好的， 谢谢 "


@pytest.mark.parametrize("line,has,mostly", [
    ("The cat sees a fish.", False, False),
    ("", False, False),
    ("猫看见一条鱼。", True, True),
    ("我们用API来做", True, True),            # 5 of 8 characters
    ("I like 北京 a lot", True, False),       # 2 of 11
    ("GPU和CPU", True, False),                # 1 of 7
    ("東京に行きます", True, True),             # Japanese kana count as CJK
    ("ＤＮＡ。", False, False),               # full-width forms and punctuation are not characters
])
def test_cjk_script_checks(line, has, mostly):
    assert (has_cjk(line), mostly_cjk(line)) == (has, mostly)
