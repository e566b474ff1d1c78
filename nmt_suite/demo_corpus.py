"""A built-in en->zh demo corpus, generated deterministically from a small bilingual grammar.

Why a grammar and not random strings: the demo must show that the pipeline learns real
translation phenomena in minutes on a CPU. Every sentence is built from one abstract
clause and rendered twice, by an English and a Chinese realiser, so the pairs differ
where the languages really differ:

- measure words (``three books`` -> 三本书, ``two cats`` -> 两只猫, ``this shirt`` -> 这件衬衫);
- numbers (``twenty-two`` -> 二十二, but ``two`` before a measure word -> 两), digits read
  out in years (``1998`` -> 一九九八年), dates and clock times in the opposite order
  (``at seven o'clock on March 5`` -> 三月五日七点);
- word order: time and place before the verb (``... at the store yesterday`` -> 昨天在商店...),
  wh-words in situ (``What did Tom buy?`` -> 汤姆买了什么？), comparatives (X比Y高),
  relative clauses before the noun (``the book that Tom bought`` -> 汤姆买的书);
- aspect and negation particles (了, 正在, 会, 不, 没有) instead of English inflection.

The English side is a deterministic function of the abstract clause and so is the
Chinese one, hence a model can in principle translate perfectly; an untrained model
scores near zero. valid and test are drawn first and no train or monolingual sentence
equals a valid/test sentence on either side. Every lexicon entry appears in train
(sentences that force the entries no random sentence used are added first).

``write_demo_corpus(out_dir)`` writes ``{train,valid,test}.{en,zh}`` and ``mono.zh``;
the same seed gives byte-identical files.
"""
import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

from nmt_suite.files import atomic_write_lines

ZH_PERIOD = "。"
ZH_QUESTION = "？"

# ---------------------------------------------------------------------------- numbers

_EN_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ZH_DIGITS = "零一二三四五六七八九"


def en_number(n: int) -> str:
    """1..999 in English words: 21 -> twenty-one, 305 -> three hundred and five."""
    if not 0 < n < 1000:
        raise ValueError(f"en_number supports 1..999, got {n}")
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    return f"{_EN_ONES[hundreds]} hundred" + (f" and {en_number(rest)}" if rest else "")


def zh_number(n: int, counting: bool = False) -> str:
    """1..999 in Chinese numerals; ``counting`` (before a measure word) turns a lone 2 into 两."""
    if not 0 < n < 1000:
        raise ValueError(f"zh_number supports 1..999, got {n}")
    if n < 10:
        return "两" if (n == 2 and counting) else _ZH_DIGITS[n]
    if n < 20:
        return "十" + (_ZH_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        tens, ones = divmod(n, 10)
        return _ZH_DIGITS[tens] + "十" + (_ZH_DIGITS[ones] if ones else "")
    hundreds, rest = divmod(n, 100)
    head = ("两" if (hundreds == 2 and counting) else _ZH_DIGITS[hundreds]) + "百"
    if rest == 0:
        return head
    if rest < 10:
        return head + "零" + _ZH_DIGITS[rest]
    if rest < 20:
        return head + "一" + zh_number(rest)
    return head + zh_number(rest)


def zh_digits(n: int) -> str:
    """Years are read digit by digit: 1998 -> 一九九八."""
    return "".join(_ZH_DIGITS[int(d)] for d in str(n))


# ---------------------------------------------------------------------------- lexicon


@dataclass(frozen=True)
class Noun:
    en: str          # singular, e.g. "cup of tea"
    en_pl: str       # plural, e.g. "cups of tea"
    en_bare: str     # generic use after "like": "cats", "tea"
    zh: str
    mw: str          # measure word
    groups: tuple


def _n(en, zh, mw, groups, en_pl=None, en_bare=None):
    en_pl = en_pl or en + "s"
    return Noun(en, en_pl, en_bare or en_pl, zh, mw, tuple(groups.split()))


NOUNS = (
    _n("book", "书", "本", "read obj"), _n("magazine", "杂志", "本", "read obj"),
    _n("newspaper", "报纸", "份", "read obj"), _n("letter", "信", "封", "read write obj"),
    _n("dictionary", "词典", "本", "read obj", en_pl="dictionaries"),
    _n("novel", "小说", "本", "read write obj"),
    _n("pen", "笔", "支", "obj thing"), _n("key", "钥匙", "把", "obj thing"),
    _n("umbrella", "伞", "把", "obj thing"), _n("bag", "包", "个", "obj thing"),
    _n("chair", "椅子", "把", "obj thing"), _n("table", "桌子", "张", "obj thing"),
    _n("computer", "电脑", "台", "obj thing"), _n("phone", "手机", "部", "obj thing"),
    _n("ticket", "票", "张", "obj thing"), _n("photo", "照片", "张", "obj thing"),
    _n("map", "地图", "张", "obj thing"), _n("lamp", "灯", "盏", "obj thing"),
    _n("shirt", "衬衫", "件", "obj cloth"), _n("coat", "外套", "件", "obj cloth"),
    _n("hat", "帽子", "顶", "obj cloth"), _n("skirt", "裙子", "条", "obj cloth"),
    _n("sweater", "毛衣", "件", "obj cloth"),
    _n("pair of shoes", "鞋", "双", "obj cloth", en_pl="pairs of shoes", en_bare="shoes"),
    _n("apple", "苹果", "个", "obj food"), _n("banana", "香蕉", "根", "obj food"),
    _n("egg", "鸡蛋", "个", "obj food"), _n("cake", "蛋糕", "块", "obj food cook"),
    _n("orange", "橙子", "个", "obj food"), _n("watermelon", "西瓜", "个", "obj food"),
    _n("bowl of rice", "米饭", "碗", "obj food cook", en_pl="bowls of rice", en_bare="rice"),
    _n("piece of bread", "面包", "片", "obj food", en_pl="pieces of bread", en_bare="bread"),
    _n("fish", "鱼", "条", "obj food animal cook", en_pl="fish"),
    _n("cup of tea", "茶", "杯", "drink", en_pl="cups of tea", en_bare="tea"),
    _n("cup of coffee", "咖啡", "杯", "drink", en_pl="cups of coffee", en_bare="coffee"),
    _n("bottle of water", "水", "瓶", "drink", en_pl="bottles of water", en_bare="water"),
    _n("glass of milk", "牛奶", "杯", "drink", en_pl="glasses of milk", en_bare="milk"),
    _n("bottle of juice", "果汁", "瓶", "drink", en_pl="bottles of juice", en_bare="juice"),
    _n("cat", "猫", "只", "animal"), _n("dog", "狗", "只", "animal"),
    _n("bird", "鸟", "只", "animal"), _n("horse", "马", "匹", "animal"),
    _n("cow", "牛", "头", "animal"), _n("rabbit", "兔子", "只", "animal"),
    _n("duck", "鸭子", "只", "animal"), _n("pig", "猪", "头", "animal"),
    _n("car", "车", "辆", "obj vehicle"), _n("bicycle", "自行车", "辆", "obj vehicle"),
    _n("bus", "公共汽车", "辆", "vehicle", en_pl="buses"), _n("truck", "卡车", "辆", "vehicle"),
    _n("boat", "船", "条", "vehicle"),
    _n("flower", "花", "朵", "obj plant"), _n("tree", "树", "棵", "plant"),
    _n("movie", "电影", "部", "film"), _n("song", "歌", "首", "write song"),
)

# (base, 3rd person singular, past, -ing, zh, object groups, tenses it takes)
ALL_TENSES = ("present", "past", "future", "progressive")


@dataclass(frozen=True)
class Verb:
    en: str
    en_s: str
    en_past: str
    en_ing: str
    zh: str
    groups: tuple
    tenses: tuple = ALL_TENSES


VERBS = (
    Verb("buy", "buys", "bought", "buying", "买", ("obj", "drink")),
    Verb("sell", "sells", "sold", "selling", "卖", ("obj", "animal", "vehicle")),
    Verb("eat", "eats", "ate", "eating", "吃", ("food",)),
    Verb("drink", "drinks", "drank", "drinking", "喝", ("drink",)),
    Verb("read", "reads", "read", "reading", "读", ("read",)),
    Verb("write", "writes", "wrote", "writing", "写", ("write",)),
    Verb("watch", "watches", "watched", "watching", "看", ("film",)),
    Verb("see", "sees", "saw", "seeing", "看见", ("animal", "vehicle", "plant"), ("past", "future")),
    Verb("draw", "draws", "drew", "drawing", "画", ("animal", "plant", "vehicle")),
    Verb("find", "finds", "found", "finding", "找到", ("thing",), ("past", "future")),
    Verb("borrow", "borrows", "borrowed", "borrowing", "借", ("read", "thing", "vehicle")),
    Verb("wash", "washes", "washed", "washing", "洗", ("cloth", "vehicle")),
    Verb("make", "makes", "made", "making", "做", ("cook",)),
    Verb("order", "orders", "ordered", "ordering", "点", ("food", "drink"), ("past", "future")),
    Verb("want", "wants", "wanted", "wanting", "想要", ("obj", "drink", "animal"), ("present",)),
)

# attributive adjectives: (en, zh, noun groups)
ADJECTIVES = (
    ("red", "红", "thing cloth vehicle plant"), ("white", "白", "thing cloth vehicle animal"),
    ("black", "黑", "thing cloth vehicle animal"), ("blue", "蓝", "thing cloth vehicle"),
    ("green", "绿", "thing cloth"), ("yellow", "黄", "cloth plant"),
    ("big", "大", "thing vehicle animal food plant"), ("small", "小", "thing vehicle animal food"),
    ("new", "新", "thing cloth vehicle read"), ("old", "旧", "thing cloth vehicle read"),
    ("beautiful", "漂亮的", "cloth plant thing"), ("expensive", "贵的", "thing cloth vehicle"),
    ("cheap", "便宜的", "thing cloth vehicle read"), ("delicious", "好吃的", "food"),
    ("interesting", "有趣的", "read film"),
)

NAMES = (("Tom", "汤姆"), ("Mary", "玛丽"), ("John", "约翰"), ("Lucy", "露西"), ("David", "大卫"),
         ("Anna", "安娜"), ("Peter", "彼得"), ("Linda", "琳达"), ("Mike", "迈克"), ("Emma", "艾玛"))
# (subject, object, possessive, zh, 3rd person singular, be-form)
PRONOUNS = (("I", "me", "my", "我", False, "am"), ("you", "you", "your", "你", False, "are"),
            ("he", "him", "his", "他", True, "is"), ("she", "her", "her", "她", True, "is"),
            ("we", "us", "our", "我们", False, "are"), ("they", "them", "their", "他们", False, "are"))
KIN = (("mother", "妈妈"), ("father", "爸爸"), ("teacher", "老师"), ("friend", "朋友"),
       ("brother", "哥哥"), ("sister", "姐姐"), ("doctor", "医生"), ("neighbor", "邻居"),
       ("boss", "老板"), ("classmate", "同学"))

# (en "at" form, en "to" form or None, zh, zh "inside" form for "there is ... in X")
PLACES = (
    ("at the store", "to the store", "商店", "商店里"), ("in the park", "to the park", "公园", "公园里"),
    ("at school", "to school", "学校", "学校里"), ("at home", None, "家", "家里"),
    ("in the library", "to the library", "图书馆", "图书馆里"),
    ("in the kitchen", None, "厨房", "厨房里"), ("at the station", "to the station", "车站", "车站里"),
    ("in the office", "to the office", "办公室", "办公室里"),
    ("at the restaurant", "to the restaurant", "饭馆", "饭馆里"),
    ("at the hospital", "to the hospital", "医院", "医院里"),
    ("in Beijing", "to Beijing", "北京", "北京"), ("in Shanghai", "to Shanghai", "上海", "上海"),
    ("in London", "to London", "伦敦", "伦敦"), ("in the garden", None, "花园", "花园里"),
    ("at the market", "to the market", "市场", "市场上"),
)

WEEKDAYS = (("Monday", "星期一"), ("Tuesday", "星期二"), ("Wednesday", "星期三"), ("Thursday", "星期四"),
            ("Friday", "星期五"), ("Saturday", "星期六"), ("Sunday", "星期天"))
MONTHS = ("January February March April May June July August September October November "
          "December").split()

# fixed time expressions: (en, zh, may combine with a clock time)
TIMES = {
    "past": (("yesterday", "昨天", True), ("yesterday morning", "昨天早上", True),
             ("yesterday evening", "昨天晚上", True), ("last week", "上个星期", False),
             ("last month", "上个月", False), ("last year", "去年", False)),
    "future": (("tomorrow", "明天", True), ("tomorrow morning", "明天早上", True),
               ("tomorrow evening", "明天晚上", True), ("next week", "下个星期", False),
               ("next month", "下个月", False), ("next year", "明年", False)),
    "present": (("every day", "每天", True), ("every morning", "每天早上", True),
                ("every evening", "每天晚上", True), ("every week", "每个星期", False)),
    "progressive": (("now", "现在", False),),
}
# present habitual adverbs that sit before the verb in both languages
ADVERBS = (("often", "经常"), ("usually", "通常"), ("always", "总是"), ("sometimes", "有时候"))

# predicative comparisons: (en comparative, zh)
PERSON_COMPARATIVES = (("taller", "高"), ("shorter", "矮"), ("older", "大"), ("younger", "小"),
                       ("busier", "忙"), ("happier", "高兴"), ("stronger", "强壮"))
THING_COMPARATIVES = (("bigger", "大", "thing vehicle animal food plant"),
                      ("smaller", "小", "thing vehicle animal food"),
                      ("more expensive", "贵", "thing cloth vehicle read"),
                      ("cheaper", "便宜", "thing cloth vehicle read"),
                      ("heavier", "重", "thing vehicle animal"),
                      ("newer", "新", "thing cloth vehicle read"), ("older", "旧", "thing cloth vehicle"))
# predicative adjectives in relative-clause sentences: (en, zh after 很, noun groups)
PREDICATES = (("interesting", "有趣", "read film"), ("expensive", "贵", "thing cloth vehicle"),
              ("cheap", "便宜", "thing cloth read"), ("delicious", "好吃", "food"),
              ("beautiful", "漂亮", "cloth plant"), ("heavy", "重", "thing"), ("new", "新", "thing cloth"))
LANGUAGES = (("Chinese", "中文"), ("English", "英语"), ("French", "法语"), ("Japanese", "日语"),
             ("German", "德语"), ("Spanish", "西班牙语"), ("Korean", "韩语"))

COUNT_NUMBERS = tuple(range(1, 100))


def lexicon_entries():
    """Every lexicon entry as (category, key, English surface forms, Chinese).

    ``key`` is the form the generator picks the entry by; a sentence may show any of the
    surface forms (``cups of tea`` for the entry ``cup of tea``, ``an apple`` for 1).
    This is what the coverage guarantee (every entry in train) is about.
    """
    entries = []
    entries += [("noun", n.en, (n.en, n.en_pl, n.en_bare), n.zh) for n in NOUNS]
    entries += [("verb", v.en, (v.en, v.en_s, v.en_past, v.en_ing), v.zh) for v in VERBS]
    entries += [("adjective", en, (en,), zh) for en, zh, _ in ADJECTIVES]
    entries += [("name", en, (en,), zh) for en, zh in NAMES]
    entries += [("pronoun", p[0], p[:3], p[3]) for p in PRONOUNS]
    entries += [("kin", en, (en,), zh) for en, zh in KIN]
    entries += [("place", p[0], tuple(x for x in p[:2] if x), p[2]) for p in PLACES]
    entries += [("weekday", en, (en, en + "s"), zh) for en, zh in WEEKDAYS]
    entries += [("month", en, (en,), f"{zh_number(i + 1)}月") for i, en in enumerate(MONTHS)]
    entries += [("time", t[0], (t[0],), t[1]) for tense in ALL_TENSES for t in TIMES[tense]]
    entries += [("adverb", en, (en,), zh) for en, zh in ADVERBS]
    entries += [("person_comparative", en, (en,), zh) for en, zh in PERSON_COMPARATIVES]
    entries += [("thing_comparative", en, (en,), zh) for en, zh, _ in THING_COMPARATIVES]
    entries += [("predicate", en, (en,), zh) for en, zh, _ in PREDICATES]
    entries += [("language", en, (en,), zh) for en, zh in LANGUAGES]
    entries += [("number", en_number(n), (en_number(n),) + (("a", "an") if n == 1 else ()), zh_number(n))
                for n in COUNT_NUMBERS]
    return entries


# ---------------------------------------------------------------------------- generator


@dataclass
class Phrase:
    en: str
    zh: str
    third_singular: bool = True
    be: str = "is"


class _Generator:
    """Draws one sentence pair at a time; records which lexicon entries it used.

    ``forced`` = (category, English form): the first choice from that category returns it,
    which is how entries no random sentence used get into train.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.forced = None
        self.used = []

    def pick(self, category, options, key):
        if self.forced is not None and self.forced[0] == category:
            for option in options:
                if key(option) == self.forced[1]:
                    self.forced = None
                    self.used.append((category, key(option)))
                    return option
        option = self.rng.choice(options)
        self.used.append((category, key(option)))
        return option

    def chance(self, p):
        return self.rng.random() < p

    # --- noun phrases

    def count(self):
        """1..99, mostly small numbers as in real text."""
        options = COUNT_NUMBERS[:10] if self.chance(0.6) else COUNT_NUMBERS
        return self.pick("number", options, en_number)

    def person(self, case="subject"):
        kind = self.rng.random()
        if kind < 0.35:
            p = self.pick("pronoun", PRONOUNS, lambda p: p[0])
            en = p[0] if case == "subject" else p[1]
            return Phrase(en, p[3], p[4], p[5])
        if kind < 0.7:
            en, zh = self.pick("name", NAMES, lambda x: x[0])
            return Phrase(en, zh)
        kin_en, kin_zh = self.pick("kin", KIN, lambda x: x[0])
        if self.chance(0.3):
            name_en, name_zh = self.pick("name", NAMES, lambda x: x[0])
            return Phrase(f"{name_en}'s {kin_en}", f"{name_zh}的{kin_zh}")
        p = self.pick("pronoun", PRONOUNS, lambda p: p[0])
        return Phrase(f"{p[2]} {kin_en}", f"{p[3]}的{kin_zh}")

    def noun(self, groups):
        options = [n for n in NOUNS if set(n.groups) & set(groups)]
        return self.pick("noun", options, lambda n: n.en)

    def adjective(self, noun, p=0.35):
        """An attributive adjective that fits the noun, or None (container phrases take none)."""
        options = [a for a in ADJECTIVES if set(a[2].split()) & set(noun.groups)]
        if " of " in noun.en or not options or not self.chance(p):
            return None
        return self.pick("adjective", options, lambda a: a[0])

    def counted(self, noun, n=None, demonstrative=None, adjective=True):
        """``three red apples`` -> 三个红苹果; ``this shirt`` -> 这件衬衫."""
        n = self.count() if n is None else n
        adj = self.adjective(noun) if adjective else None
        head_en = noun.en if n == 1 else noun.en_pl
        if adj is not None:  # never on "bowl of rice"-like nouns, see adjective()
            head_en = f"{adj[0]} {head_en}"
        zh_noun = (adj[1] if adj else "") + noun.zh
        if demonstrative is not None:
            dem_en, dem_zh = demonstrative
            number_en = "" if n == 1 else f" {en_number(n)}"
            number_zh = "" if n == 1 else zh_number(n, counting=True)
            return Phrase(f"{dem_en}{number_en} {head_en}", f"{dem_zh}{number_zh}{noun.mw}{zh_noun}", n == 1)
        if n == 1:
            article = "an" if head_en[0] in "aeiou" else "a"
            return Phrase(f"{article} {head_en}", f"一{noun.mw}{zh_noun}")
        return Phrase(f"{en_number(n)} {head_en}", f"{zh_number(n, counting=True)}{noun.mw}{zh_noun}", False)

    def demonstrative(self, plural):
        if self.chance(0.5):
            return ("these", "这") if plural else ("this", "这")
        return ("those", "那") if plural else ("that", "那")

    # --- time and place

    def clock(self):
        hour = self.rng.randint(1, 12)
        if self.chance(0.3):
            return Phrase(f"at half past {en_number(hour)}", f"{zh_number(hour, counting=True)}点半")
        return Phrase(f"at {en_number(hour)} o'clock", f"{zh_number(hour, counting=True)}点")

    def date(self):
        month = self.pick("month", MONTHS, lambda m: m)
        day = self.rng.randint(1, 28)
        return Phrase(f"{month} {day}", f"{zh_number(MONTHS.index(month) + 1)}月{zh_number(day)}日")

    def time(self, tense):
        """A time expression valid for the tense: English order clock + day, Chinese day + clock."""
        kind = self.rng.random()
        clock_ok = True
        if tense in ("past", "future") and kind < 0.2:
            day = self.pick("weekday", WEEKDAYS, lambda w: w[0])
            phrase = Phrase(f"on {day[0]}", day[1])
        elif tense in ("past", "future") and kind < 0.35:
            date = self.date()
            phrase = Phrase(f"on {date.en}", date.zh)
        elif tense == "past" and kind < 0.45:
            n = self.rng.randint(2, 9)
            unit = self.rng.choice((("days", "天"), ("weeks", "个星期"), ("years", "年")))
            phrase = Phrase(f"{en_number(n)} {unit[0]} ago", f"{zh_number(n, counting=True)}{unit[1]}前")
            clock_ok = False
        elif tense == "present" and kind < 0.2:
            day = self.pick("weekday", WEEKDAYS, lambda w: w[0])
            phrase = Phrase(f"on {day[0]}s", f"每个{day[1]}")
        else:
            en, zh, clock_ok = self.pick("time", TIMES[tense], lambda t: t[0])
            phrase = Phrase(en, zh)
        if clock_ok and tense != "progressive" and self.chance(0.25):
            clock = self.clock()
            phrase = Phrase(f"{clock.en} {phrase.en}", f"{phrase.zh}{clock.zh}")
        return phrase

    def place(self, need_to=False):
        options = [p for p in PLACES if p[1]] if need_to else PLACES
        return self.pick("place", options, lambda p: p[0])

    # --- clauses

    # Chinese verb group = marker + (在 place) + verb + suffix: 会/不/没有/正在 precede the place phrase
    ZH_MARKERS = {("present", False): ("", ""), ("present", True): ("不", ""), ("past", False): ("", "了"),
                  ("past", True): ("没有", ""), ("future", False): ("会", ""), ("future", True): ("不会", ""),
                  ("progressive", False): ("正在", "")}

    def en_verb(self, verb, tense, subject, negative):
        """English auxiliary + verb of a declarative clause."""
        if tense == "present":
            if negative:
                return f"{'does' if subject.third_singular else 'do'} not {verb.en}"
            return verb.en_s if subject.third_singular else verb.en
        if tense == "past":
            return f"did not {verb.en}" if negative else verb.en_past
        if tense == "future":
            return f"will not {verb.en}" if negative else f"will {verb.en}"
        return f"{subject.be} {verb.en_ing}"

    def transitive(self):
        """Subject (time) (place) verb object: the core clause, in all tenses, +/- negation, +/- question."""
        verb = self.pick("verb", VERBS, lambda v: v.en)
        tense = self.rng.choice(verb.tenses)
        subject = self.person()
        noun = self.noun(verb.groups)
        if tense == "present" and self.chance(0.4):
            obj = Phrase(noun.en_bare, noun.zh)
        else:
            obj = self.counted(noun)
        time = self.time(tense) if self.chance(0.75) else None
        place = self.place() if self.chance(0.4) else None
        kind = self.rng.random()
        negative = tense != "progressive" and kind < 0.2
        question = kind > 0.8
        adverb = None
        if tense == "present" and time is None and not negative and self.chance(0.7):
            adverb = self.pick("adverb", ADVERBS, lambda a: a[0])
        tail_en = (f" {place[0]}" if place else "") + (f" {time.en}" if time else "")
        marker, suffix = self.ZH_MARKERS[tense, negative]
        place_zh = f"在{place[2]}" if place else ""
        if marker == "正在" and place:  # 正在 + 在商店 contracts to 正在商店
            place_zh = place[2]
        zh = (subject.zh + (time.zh if time else "") + (adverb[1] if adverb else "") + marker
              + place_zh + verb.zh + suffix + obj.zh)
        adverb_en = f" {adverb[0]}" if adverb else ""
        if question:
            aux = {"present": "Does" if subject.third_singular else "Do", "past": "Did",
                   "future": "Will", "progressive": subject.be.capitalize()}[tense]
            verb_en = verb.en_ing if tense == "progressive" else verb.en
            return f"{aux} {subject.en}{adverb_en} {verb_en} {obj.en}{tail_en}?", f"{zh}吗{ZH_QUESTION}"
        return (f"{subject.en}{adverb_en} {self.en_verb(verb, tense, subject, negative)} {obj.en}{tail_en}.",
                zh + ZH_PERIOD)

    def wh_question(self):
        verb = self.pick("verb", [v for v in VERBS if "past" in v.tenses], lambda v: v.en)
        subject = self.person()
        noun = self.noun(verb.groups)
        time = self.time("past") if self.chance(0.6) else None
        time_en = f" {time.en}" if time else ""
        time_zh = time.zh if time else ""
        kind = self.rng.random()
        if kind < 0.3:
            place = self.place() if self.chance(0.4) else None
            place_en = f" {place[0]}" if place else ""
            place_zh = f"在{place[2]}" if place else ""
            return (f"What did {subject.en} {verb.en}{place_en}{time_en}?",
                    f"{subject.zh}{time_zh}{place_zh}{verb.zh}了什么{ZH_QUESTION}")
        if kind < 0.5:
            obj = self.counted(noun)
            return (f"Where did {subject.en} {verb.en} {obj.en}{time_en}?",
                    f"{subject.zh}{time_zh}在哪里{verb.zh}了{obj.zh}{ZH_QUESTION}")
        if kind < 0.75:
            return (f"How many {noun.en_pl} did {subject.en} {verb.en}{time_en}?",
                    f"{subject.zh}{time_zh}{verb.zh}了几{noun.mw}{noun.zh}{ZH_QUESTION}")
        obj = self.counted(noun)
        return f"Who {verb.en_past} {obj.en}{time_en}?", f"谁{time_zh}{verb.zh}了{obj.zh}{ZH_QUESTION}"

    def go(self):
        subject = self.person()
        place = self.place(need_to=True)
        tense = self.rng.choice(("past", "future"))
        time = self.time(tense) if self.chance(0.7) else None
        companion = self.person("object") if self.chance(0.4) else None
        with_en = f" with {companion.en}" if companion else ""
        with_zh = f"和{companion.zh}" if companion else ""
        time_en = f" {time.en}" if time else ""
        time_zh = time.zh if time else ""
        marker, suffix = ("", "了") if tense == "past" else ("会", "")
        if self.chance(0.2):
            aux = "did" if tense == "past" else "will"
            return (f"When {aux} {subject.en} go {place[1]}{with_en}?",
                    f"{subject.zh}什么时候{marker}{with_zh}去{suffix}{place[2]}{ZH_QUESTION}")
        verb_en = "went" if tense == "past" else "will go"
        return (f"{subject.en} {verb_en} {place[1]}{with_en}{time_en}.",
                f"{subject.zh}{time_zh}{marker}{with_zh}去{suffix}{place[2]}{ZH_PERIOD}")

    def give(self):
        subject = self.person()
        recipient = self.person("object")
        noun = self.noun(("obj", "drink"))
        obj = self.counted(noun)
        tense = self.rng.choice(("past", "future"))
        time = self.time(tense) if self.chance(0.6) else None
        verb_en, verb_zh = ("gave", "给了") if tense == "past" else ("will give", "会给")
        return (f"{subject.en} {verb_en} {recipient.en} {obj.en}{' ' + time.en if time else ''}.",
                f"{subject.zh}{time.zh if time else ''}{verb_zh}{recipient.zh}{obj.zh}{ZH_PERIOD}")

    def have(self):
        subject = self.person()
        noun = self.noun(("animal", "thing", "vehicle", "read", "cloth"))
        kind = self.rng.random()
        have_en = "has" if subject.third_singular else "have"
        if kind < 0.2:
            aux = "does" if subject.third_singular else "do"
            return (f"How many {noun.en_pl} {aux} {subject.en} have?",
                    f"{subject.zh}有几{noun.mw}{noun.zh}{ZH_QUESTION}")
        if kind < 0.35:
            aux = "does" if subject.third_singular else "do"
            return (f"{subject.en} {aux} not have any {noun.en_pl}.", f"{subject.zh}没有{noun.zh}{ZH_PERIOD}")
        obj = self.counted(noun)
        return f"{subject.en} {have_en} {obj.en}.", f"{subject.zh}有{obj.zh}{ZH_PERIOD}"

    def there_is(self):
        place = self.place()
        noun = self.noun(("animal", "thing", "vehicle", "plant", "read", "food"))
        obj = self.counted(noun)
        be = "is" if obj.third_singular else "are"
        return f"There {be} {obj.en} {place[0]}.", f"{place[3]}有{obj.zh}{ZH_PERIOD}"

    def compare(self):
        if self.chance(0.5):
            a, b = self.person(), self.person("object")
            if a.en == b.en:
                return None
            adj = self.pick("person_comparative", PERSON_COMPARATIVES, lambda x: x[0])
            return f"{a.en} {a.be} {adj[0]} than {b.en}.", f"{a.zh}比{b.zh}{adj[1]}{ZH_PERIOD}"
        adj = self.pick("thing_comparative", THING_COMPARATIVES, lambda x: x[0])
        noun = self.noun(tuple(adj[2].split()))
        this = self.counted(noun, n=1, demonstrative=("this", "这"), adjective=False)
        that = self.counted(noun, n=1, demonstrative=("that", "那"), adjective=False)
        if self.chance(0.5):
            return (f"This {noun.en} is {adj[0]} than that one.",
                    f"{this.zh}比{that.zh}{adj[1]}{ZH_PERIOD}")
        return f"This {noun.en} is {adj[0]} than that {noun.en}.", f"{this.zh}比{that.zh}{adj[1]}{ZH_PERIOD}"

    def relative(self):
        pred = self.pick("predicate", PREDICATES, lambda x: x[0])
        verb = self.pick("verb", [v for v in VERBS if "past" in v.tenses], lambda v: v.en)
        options = [n for n in NOUNS if set(n.groups) & set(verb.groups) and set(n.groups) & set(pred[2].split())]
        if not options:
            return None
        noun = self.pick("noun", options, lambda n: n.en)
        subject = self.person()
        time = self.time("past") if self.chance(0.5) else None
        be = "is" if self.chance(0.7) else "was"
        return (f"The {noun.en} that {subject.en} {verb.en_past}{' ' + time.en if time else ''} {be} {pred[0]}.",
                f"{subject.zh}{time.zh if time else ''}{verb.zh}的{noun.zh}很{pred[1]}{ZH_PERIOD}")

    def numbers(self):
        """Ages, prices, birthdays, today's date: numbers and dates in running text."""
        kind = self.rng.random()
        subject = self.person()
        if kind < 0.25:
            age = self.pick("number", COUNT_NUMBERS, en_number)
            year_s = "year" if age == 1 else "years"
            return (f"{subject.en} {subject.be} {en_number(age)} {year_s} old.",
                    f"{subject.zh}{zh_number(age, counting=True)}岁{ZH_PERIOD}")
        if kind < 0.45:
            noun = self.noun(("thing", "cloth", "vehicle", "read"))
            price = self.rng.randint(1, 999)
            plural = self.chance(0.3)
            n = self.rng.randint(2, 9) if plural else 1
            this = self.counted(noun, n=n, demonstrative=self.demonstrative(plural), adjective=False)
            dollars = "dollar" if price == 1 else "dollars"
            cost = "cost" if plural else "costs"
            return (f"{this.en} {cost} {en_number(price)} {dollars}.",
                    f"{this.zh}{zh_number(price, counting=True)}美元{ZH_PERIOD}")
        if kind < 0.65:
            date = self.date()
            poss_en = subject.en + "'s" if subject.en not in {p[0] for p in PRONOUNS} else {
                p[0]: p[2] for p in PRONOUNS}[subject.en]
            return (f"{poss_en} birthday is on {date.en}.", f"{subject.zh}的生日是{date.zh}{ZH_PERIOD}")
        if kind < 0.85:
            date = self.date()
            year = self.rng.randint(1950, 2023)
            was = "were" if subject.be == "are" else "was"
            return (f"{subject.en} {was} born on {date.en}, {year}.",
                    f"{subject.zh}出生于{zh_digits(year)}年{date.zh}{ZH_PERIOD}")
        day = self.pick("weekday", WEEKDAYS, lambda w: w[0])
        date = self.date()
        return f"Today is {day[0]}, {date.en}.", f"今天是{date.zh}{day[1]}{ZH_PERIOD}"

    def speak(self):
        subject = self.person()
        lang = self.pick("language", LANGUAGES, lambda x: x[0])
        kind = self.rng.random()
        if kind < 0.2:
            return f"Can {subject.en} speak {lang[0]}?", f"{subject.zh}会说{lang[1]}吗{ZH_QUESTION}"
        if kind < 0.4:
            return f"{subject.en} cannot speak {lang[0]}.", f"{subject.zh}不会说{lang[1]}{ZH_PERIOD}"
        return f"{subject.en} can speak {lang[0]}.", f"{subject.zh}会说{lang[1]}{ZH_PERIOD}"

    def like(self):
        subject = self.person()
        noun = self.noun(("animal", "food", "drink", "film", "song", "read", "plant"))
        kind = self.rng.random()
        likes = "likes" if subject.third_singular else "like"
        aux = "does" if subject.third_singular else "do"
        if kind < 0.2:
            return (f"{aux.capitalize()} {subject.en} like {noun.en_bare}?",
                    f"{subject.zh}喜欢{noun.zh}吗{ZH_QUESTION}")
        if kind < 0.4:
            return f"{subject.en} {aux} not like {noun.en_bare}.", f"{subject.zh}不喜欢{noun.zh}{ZH_PERIOD}"
        return f"{subject.en} {likes} {noun.en_bare}.", f"{subject.zh}喜欢{noun.zh}{ZH_PERIOD}"

    TEMPLATES = (("transitive", 0.36), ("wh_question", 0.1), ("go", 0.08), ("give", 0.07), ("have", 0.07),
                 ("there_is", 0.06), ("compare", 0.06), ("relative", 0.05), ("numbers", 0.08),
                 ("speak", 0.03), ("like", 0.04))

    def sentence(self, forced=None):
        """One (en, zh) pair and the lexicon entries it used."""
        while True:
            self.forced, self.used = forced, []
            names, weights = zip(*self.TEMPLATES)
            pair = getattr(self, self.rng.choices(names, weights)[0])()
            if pair is None or (forced is not None and forced not in self.used):
                continue
            en, zh = pair
            return en[0].upper() + en[1:], zh, list(self.used)


# ---------------------------------------------------------------------------- corpus


def _coverage_keys():
    """(category, key) of every entry the generator can be forced to use."""
    return [(category, key) for category, key, _, _ in lexicon_entries()]


def generate_demo_corpus(seed: int = 1, n_train: int = 24000, n_valid: int = 500, n_test: int = 1000,
                         n_mono: int = 10000):
    """The corpus in memory: {"train": [(en, zh)], "valid": ..., "test": ..., "mono": [zh]}."""
    for name, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if n < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")
    keys = _coverage_keys()
    if n_train < len(keys):
        raise ValueError(f"n_train must be >= {len(keys)} so that every lexicon entry fits in train")
    gen = _Generator(random.Random(seed))
    held_en, held_zh = set(), set()
    held = {}
    for split, n in (("valid", n_valid), ("test", n_test)):
        pairs = []
        while len(pairs) < n:
            en, zh, _ = gen.sentence()
            if en in held_en or zh in held_zh:
                continue
            held_en.add(en)
            held_zh.add(zh)
            pairs.append((en, zh))
        held[split] = pairs

    train, train_en, train_zh = [], set(), set()
    covered = set()

    def add(en, zh, used):
        if en in held_en or zh in held_zh or en in train_en or zh in train_zh:
            return False
        train.append((en, zh))
        train_en.add(en)
        train_zh.add(zh)
        covered.update(used)
        return True

    for key in keys:  # one sentence per lexicon entry first, so every entry is in train
        if key in covered:
            continue
        for _ in range(1000):
            if add(*gen.sentence(forced=key)):
                break
        else:
            raise RuntimeError(f"could not place lexicon entry {key} in a new train sentence")
    while len(train) < n_train:
        add(*gen.sentence())
    gen.rng.shuffle(train)

    mono, mono_seen = [], set()
    while len(mono) < n_mono:
        _, zh, _ = gen.sentence()
        if zh in held_zh or zh in train_zh or zh in mono_seen:
            continue
        mono_seen.add(zh)
        mono.append(zh)
    return {"train": train, **held, "mono": mono}


def write_demo_corpus(out_dir, seed: int = 1, n_train: int = 24000, n_valid: int = 500, n_test: int = 1000,
                      n_mono: int = 10000) -> dict:
    """Write ``{train,valid,test}.{en,zh}`` and ``mono.zh`` under ``out_dir``; return the counts and settings.

    Each file is written under a temporary name and renamed, so an interrupted call
    leaves no partial file behind.
    """
    corpus = generate_demo_corpus(seed, n_train, n_valid, n_test, n_mono)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        atomic_write_lines(out_dir / f"{split}.en", [en for en, _ in corpus[split]])
        atomic_write_lines(out_dir / f"{split}.zh", [zh for _, zh in corpus[split]])
    atomic_write_lines(out_dir / "mono.zh", corpus["mono"])
    return {
        "generator": "nmt_suite.demo_corpus", "seed": seed,
        "counts": {split: len(corpus[split]) for split in ("train", "valid", "test", "mono")},
        "lexicon_entries": len(lexicon_entries()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--train", type=int, default=24000, help="train pairs")
    parser.add_argument("--valid", type=int, default=500, help="valid pairs")
    parser.add_argument("--test", type=int, default=1000, help="test pairs")
    parser.add_argument("--mono", type=int, default=10000, help="monolingual zh sentences")
    args = parser.parse_args(argv)
    info = write_demo_corpus(args.out_dir, args.seed, args.train, args.valid, args.test, args.mono)
    print(json.dumps(info, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
