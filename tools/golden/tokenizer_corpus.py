"""The text corpus the tokenizer goldens are made from (imported by make_tokenizer_golden.py and
tools/bench/bench_tokenizer.py). Deterministic: hand-written texts, then seeded random mixtures."""
import random

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! How are you doing today?",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness, it was the epoch of belief, it was the epoch of incredulity.",
    "Dr. Smith's patients (aged 18–65) weren't told; they'd've objected—wouldn't you?",
    "I'm, you're, he's, she'll, we'd, they've, it's, y'all, o'clock, rock 'n' roll.",
    "Mixed CASE words: iPhone, eBay, McDonald's, NASA, GPT-4o, DeepSeek-V3.2-Exp.",
    "Email me at john.doe+test@example.com or visit https://www.example.org/path?q=1&r=two#frag.",
    "Prices: $19.99, €5,00, £100, ¥3000, ₹450.50, 50% off!!! ***SALE***",
    "Quotes: “curly”, ‘single’, «guillemets», „German“, 「Japanese」, 『nested』.",
    "Ellipsis… em—dash – en-dash ‐ hyphen ‒ figure dash ― bar.",
    "   leading spaces and trailing spaces   ",
    "word\tseparated\tby\ttabs\t\tand\t\t\tmore",
    "line one\nline two\n\nline four\n\n\n\nline eight",
    "windows\r\nline\r\nendings\r\n\r\nhere\r\n",
    "old mac\rline\rendings\r\r",
    "mixed \r\n \n\r \t\r\n\t end",
    "Form\x0cfeed and vertical\x0btab and\x1bescape.",
    "Numbers: 0 1 12 123 1234 12345 123456 1234567 12345678901234567890",
    "3.14159265358979, 2.718281828, -42, +7, 1e-10, 6.022e23, 0xDEADBEEF, 0b1010, 1_000_000",
    "Dates 2024-01-31, 31/01/2024, 12:34:56.789, 1999年12月31日.",
    "Version v1.2.3-rc.4+build.567 released on 2026-11-28.",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <vector>\n\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\treturn v.size() > 2 ? 0 : 1;\n}\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }  // dot product",
    '{"name": "dsserve", "version": "0.1.0", "tags": ["llm", "serving"], "ok": true, "n": null}',
    "<html>\n  <body class=\"main\">\n    <p>Hello &amp; goodbye &lt;3</p>\n  </body>\n</html>",
    "SELECT id, name FROM users WHERE age >= 21 AND name LIKE '%son' ORDER BY id DESC;",
    "x = [i**2 for i in range(10) if i % 2 == 0]; print(f\"{x!r:>20}\")",
    "fn main() -> Result<(), Box<dyn Error>> {\n    let s: &str = \"héllo\";\n    println!(\"{s}\");\n    Ok(())\n}",
    "$ git commit -m 'fix: handle CRLF' && git push origin HEAD:refs/for/main",
    "    \t    indented with mixed tabs and spaces\n        more indentation\n",
    "a==b!=c<=d>=e&&f||g<<h>>i+=j-=k*=l/=m%=n^=o|=p&=q->r::s...t",
    "/* block comment */ // line comment # hash comment -- sql comment ;; lisp",
    "regex: ^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@\\w+\\.\\w{2,}$",
    "```python\nimport numpy as np\narr = np.zeros((3, 4), dtype=np.float32)\n```",
    "\\begin{equation} E = mc^2 \\quad \\int_0^\\infty e^{-x^2} dx = \\frac{\\sqrt{\\pi}}{2} \\end{equation}",
]

WORLD = [
    "我能吞下玻璃而不伤身体。这是一个用于测试分词器的中文句子，包含标点符号！",
    "深度求索（DeepSeek）发布了新的模型：DeepSeek-V3.2，支持128K上下文。",
    "繁體中文測試：臺灣、香港、澳門。龍龜鬱",
    "日本語のテキストです。ひらがな、カタカナ、漢字が混ざっています。",
    "ｶﾀｶﾅ（半角）とカタカナ（全角）、ゔぁゟ゠ヿ、ー〜",
    "東京スカイツリーは634メートルです。お問い合わせは０３－１２３４－５６７８まで。",
    "한국어 문장입니다. 토크나이저를 테스트합니다! 안녕하세요?",
    "ᄀᄁᄂ 한글 자모 ㄱㄴㄷ ㅏㅑㅓ 조합형",
    "مرحبا بالعالم! هذا نص عربي لاختبار المجزئ، مع أرقام ١٢٣٤٥ و 678.",
    "الْعَرَبِيَّةُ مَعَ التَّشْكِيلِ",
    "שלום עולם! זהו טקסט בעברית עם ניקוד: בְּרֵאשִׁית בָּרָא",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Ёжик в тумане.",
    "Ελληνικά: Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. αβγδε ΑΒΓΔΕ",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ ทดสอบ ๑๒๓",
    "हिन्दी में एक वाक्य। संख्याएँ १२३४५ और मात्राएँ।",
    "বাংলা ভাষা, தமிழ் மொழி, తెలుగు భాష, ಕನ್ನಡ, മലയാളം",
    "Tiếng Việt có dấu: Nguyễn, Trần, Lê, Phạm, Hoàng, Huỳnh, Phan.",
    "Türkçe: İstanbul, ığdır, ÇĞÖŞÜ; Polski: zażółć gęślą jaźń; Čeština: příliš žluťoučký kůň.",
    "ქართული ენა, Հայերեն լեզու, ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ᠌, ትግርኛ, ᏣᎳᎩ",
    "Deutsch: Größenmaßstäbe, Straße, ÄÖÜäöüß; Français: à côté, naïve, cœur, Œuvre.",
]

EMOJI = [
    "Emoji: 😀😃😄😁 👍 🎉 🚀 ❤️ ✨",
    "Family ZWJ: 👨‍👩‍👧‍👦 👩‍❤️‍💋‍👨 🏳️‍🌈 🧑‍💻 👁️‍🗨️",
    "Skin tones: 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿 🤝🏽 🧑🏿‍🚀",
    "Flags: 🇺🇸 🇨🇳 🇯🇵 🇰🇷 🇩🇪 🇫🇷 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "Keycaps: 1️⃣ 2️⃣ #️⃣ *️⃣ and variation selectors ☺︎ ☺️",
    "Symbols: ∑∏∫√∞≈≠≤≥ ← → ↔ ⇒ ⊂⊃∩∪ ℕℤℚℝℂ ♠♣♥♦ ☀☁☂ ⚡ ©®™",
    "Math letters: 𝐀𝐁𝐂 𝑎𝑏𝑐 𝔸𝔹ℂ 𝒜ℬ𝒞 𝟘𝟙𝟚",
    "Box drawing ┌─┬─┐ │ │ │ └─┴─┘ ░▒▓█",
]

MARKS = [
    "Combining: e\u0301 a\u0300 o\u0308 n\u0303 c\u0327 (decomposed) vs é à ö ñ ç (composed)",
    "Zalgo: Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034da\u0357\u0369lgo",
    "Stacked marks on digits: 1\u0301 2\u0308 3\u20dd and on space: \u0301 \u0308",
    "Devanagari virama क्ष त्र ज्ञ and Thai marks กิ กี กึ กื",
    "Hangul jamo sequences: \u1100\u1161\u11a8 \u1112\u1161\u11ab",
]

DIGITS = [
    "1",
    "12",
    "123",
    "1234",
    "12345678901234567890123456789012345678901234567890",
    "Full-width １２３４５６７８９０ and Arabic-Indic ٠١٢٣٤٥٦٧٨٩ and Devanagari ०१२३",
    "Superscripts x² y³ z¹⁰ fractions ½ ¼ ¾ ⅓ roman Ⅻ ⅷ circled ① ② ⑳",
    "Phone +1 (555) 123-4567, ZIP 94105-1234, IPv4 192.168.001.255, IPv6 2001:db8::ff00:42:8329",
    "a1b22c333d4444e55555",
    "000000000000000000000000001",
    "3,141,592,653 and 3.141.592.653 and 3 141 592 653",
]

SPECIAL = [
    "<｜begin▁of▁sentence｜>Hello",
    "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\nSimple arithmetic.\n</think>\n\n4<｜end▁of▁sentence｜>",
    "<｜User｜>hi<｜Assistant｜>",
    "text<think>reasoning</think>answer",
    "<think></think><think></think>",
    "<<think>> </think></think> <think",
    "<｜User|> <|User｜> <｜user｜> <｜User｜",
    "<｜▁pad▁｜><｜end▁of▁sentence｜><|EOT|>",
    "<｜place▁holder▁no▁0｜> <｜place▁holder▁no▁42｜> <｜place▁holder▁no▁795｜> <｜place▁holder▁no▁796｜>",
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"temp\": 21}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>",
    "<｜search▁begin｜>query<｜search▁end｜>",
    "<｜fim▁begin｜>def f(x):\n    <｜fim▁hole｜>\n    return y<｜fim▁end｜>",
    " <think> spaced </think> ",
    "\n<think>\n\n</think>\n\n",
    "<｜begin▁of▁sentence｜<｜begin▁of▁sentence｜>｜>",
    "<｜User｜><｜User｜><｜User｜>",
]

ODD = [
    "",
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "a",
    "\u00a0non\u00a0breaking\u00a0spaces\u00a0",
    "ideographic\u3000space\u3000\u3000end",
    "line\u2028separator\u2029paragraph",
    "next\u0085line",
    "mongolian\u180evowel separator \u180e",
    "zero\u200bwidth\u200cjoiners\u200d\ufeffbom",
    "en\u2002em\u2003thin\u2009hair\u200anarrow\u202fmath\u205fspaces",
    "rtl \u200fmark\u200e ltr \u202eoverride\u202c",
    "NUL\x00byte and controls \x01\x02\x03\x7f\x80\x9f",
    "replacement \ufffd char and noncharacters \ufffe\uffff \U0010ffff \U000fffff",
    "private use \ue000\uf8ff \U000f0000",
    "literal backslash escapes: \\x80 \\xff \\u00e9 \\n \\t",
    "%%%%%%%%%%%%%% ........ ,,,,,,,, !!!!!!!! ???? ----- _____ ===== ~~~~~",
    "''''\"\"\"\"````",
    "(((((((( )))))))) [[[[ ]]]] {{{{ }}}}",
    "a-b_c.d/e\\f:g;h@i#j$k%l^m&n*o",
    "ALLCAPSWORDWITHOUTSPACESANDVERYLONGINDEEDTOTESTMERGESOVERMANYBYTES",
    "ab" * 40,
]

HEX_BYTES = [
    ("lone continuation", "80"),
    ("invalid lead ff", "ff"),
    ("ascii around invalid", "616263ff646566"),
    ("truncated 3-byte", "e4b8"),
    ("truncated 3-byte then ascii", "e4b861"),
    ("truncated 4-byte at end", "f09f98"),
    ("overlong slash", "c0af"),
    ("overlong 3-byte", "e080af"),
    ("surrogate", "eda080"),
    ("above U+10FFFF", "f4908080"),
    ("f5 lead", "f5808080"),
    ("mixed", "48656c6c6f20e4bda0e5a5bd80ff20f09f9880f0"),
    ("many invalid", "c1c2c3c4fefeff808182"),
    ("cjk cut in half twice", "e4bda0e5a5e4bd"),
    ("special token then invalid", "3cefbd9c55736572efbd9c3e80"),
]


def _pools(rng):
    words_en = "the of and to in is that for it as with was on be by this are or his from at".split()
    words = (words_en + "datos über café naïve 東京 大阪 数据 模型 안녕 세계 Привет мир مرحبا שלום "
             "γειά ไทย हिन्दी 😀 👍🏽 👨‍👩‍👧 🇯🇵".split())
    specials = ["<｜User｜>", "<｜Assistant｜>", "<think>", "</think>", "<｜begin▁of▁sentence｜>",
                "<｜end▁of▁sentence｜>", "<|EOT|>", "<｜tool▁sep｜>", "<｜place▁holder▁no▁7｜>"]
    spaces = [" ", "  ", "\t", "\n", "\r\n", "\n\n", "   \n", " \t ", "\u3000", "\u00a0", "\u2003",
              "\u0085", "\u180e", "\r", "\x0b", "\x0c", "\u2028"]
    punct = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["。", "，", "、", "！", "？", "：", "「",
                                                          "」", "…", "—", "«", "»", "¿", "¡", "§"]
    return words, specials, spaces, punct


def random_texts(count: int, extra_code_points: list[int], seed: int = 20261128) -> list[str]:
    """Mixtures of words, numbers, punctuation, whitespace, added tokens and random code points."""
    rng = random.Random(seed)
    words, specials, spaces, punct = _pools(rng)
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 40)):
            kind = rng.random()
            if kind < 0.40:
                parts.append(rng.choice(words))
            elif kind < 0.55:
                parts.append(rng.choice(spaces))
            elif kind < 0.65:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 12))))
            elif kind < 0.75:
                parts.append("".join(rng.choice(punct) for _ in range(rng.randint(1, 4))))
            elif kind < 0.80:
                parts.append(rng.choice(specials))
            elif kind < 0.88:
                parts.append(chr(rng.choice(extra_code_points)))
            elif kind < 0.94:
                c = rng.randint(0x20, 0x2FFFF)
                if not 0xD800 <= c <= 0xDFFF:
                    parts.append(chr(c))
            else:
                parts.append(chr(rng.randint(0x300, 0x36F)))  # a combining mark
        out.append("".join(parts))
    return out


def long_texts() -> list[str]:
    return [
        " " * 5000 + "x",
        "\n" * 300 + "end",
        " \t" * 200,
        "a" * 3000,
        "ab" * 1500,
        "ｱ" * 400,
        "中" * 2000,
        "9" * 1000,
        "😀" * 300,
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 40,
        "".join(chr(0x41 + (i * 7) % 26) + chr(0x61 + (i * 11) % 26) for i in range(1500)),
    ]


def hand_written() -> list[tuple[str, str]]:
    groups = {"prose": PROSE, "code": CODE, "world": WORLD, "emoji": EMOJI, "marks": MARKS,
              "digits": DIGITS, "special": SPECIAL, "odd": ODD, "long": long_texts()}
    return [(f"{group}/{i}", text) for group, texts in groups.items() for i, text in enumerate(texts)]
