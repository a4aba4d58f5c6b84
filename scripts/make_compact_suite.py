"""Write the compact suite (`tools/compact/`, `tasks/compact/`): short-prompt tool-use tasks for CPU training.

The agentic suites' prompts are 2.5-4k tokens (a dozen tool schemas each); a forward and backward
pass over one such sequence takes about 30 s on two CPU cores, too slow to show learning in 30
minutes. This suite keeps the prompt under 400 tokens: one agent with two tools, and three task
shapes from simple to complex:

- `weather` (simple): "What is the weather in Lima?" -> `get_weather(city)`, answer with the
  temperature and conditions it returned;
- `home` (medium): "Where does Ana live?" -> `find_person(name)`, answer with the city;
- `home-weather` (complex): "What is the weather where Ana lives?" -> `find_person`, then
  `get_weather` on the city it returned, answer with both.

Temperatures and conditions are drawn at random, so the answer cannot be known without the tool.
Cities and people are split: test tasks name cities and people that never appear in a train
task's instruction, so a held-out pass needs the skill, not a memorised answer. Deterministic
(seed 0); run it again and the files come out identical:

    python scripts/make_compact_suite.py
"""

from __future__ import annotations

import random
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CITIES = [
    "Paris", "Tokyo", "Berlin", "Lima", "Cairo", "Oslo", "Delhi", "Quito", "Madrid", "Rome", "Vienna",
    "Prague", "Dublin", "Lisbon", "Athens", "Warsaw", "Nairobi", "Lagos", "Accra", "Dakar", "Tunis",
    "Rabat", "Seoul", "Hanoi", "Manila", "Jakarta", "Bangkok", "Dhaka", "Karachi", "Tehran", "Baghdad",
    "Riyadh", "Doha", "Dubai", "Muscat", "Ankara", "Kyiv", "Minsk", "Riga", "Tallinn", "Vilnius",
    "Helsinki", "Stockholm", "Copenhagen", "Brussels", "Amsterdam", "Bern", "Zagreb", "Belgrade", "Sofia",
    "Bucharest", "Budapest", "Ottawa", "Toronto", "Chicago", "Boston", "Denver", "Havana", "Bogota",
    "Santiago", "Caracas", "Montevideo", "Sydney", "Perth", "Auckland", "Beijing", "Shanghai", "Osaka",
]  # fmt: skip
PEOPLE = [
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam",
    "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wes", "Xena",
    "Yusuf", "Zoe", "Aiko", "Bruno", "Carla", "Dario", "Emil", "Freya", "Gael", "Hana", "Ivan", "Jade",
    "Kofi", "Lena", "Marco", "Nora",
]  # fmt: skip
CONDITIONS = ["clear", "cloudy", "rain", "snow", "fog", "windy"]
WEATHER_ASKS = [
    "What is the weather in {city} right now?",
    "How is the weather in {city} today?",
    "Tell me the current weather in {city}.",
    "What's it like outside in {city} at the moment?",
]
HOME_ASKS = ["Which city does {name} live in?", "Where does {name} live?"]
HOME_WEATHER_ASKS = [
    "What is the weather like where {name} lives?",
    "How is the weather in {name}'s home city right now?",
]
SYSTEM = (
    "You are a helpful assistant with weather and contact tools. Use a tool to look facts up, "
    "never guess, then answer in one short sentence with the facts the tool returned."
)


def _domains(rng: random.Random) -> tuple[dict, dict, dict[str, tuple[int, str]], dict[str, str]]:
    weather = {c: (rng.randint(-5, 35), rng.choice(CONDITIONS)) for c in CITIES}
    homes = {p: rng.choice(CITIES) for p in PEOPLE}
    wx = {
        "name": "weather",
        "category": "Weather",
        "description": "Current weather by city.",
        "entities": [
            {
                "collection": "weather.cities",
                "description": "A city and its current weather.",
                "id_prefix": "city",
                "record_schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "temperature_c", "conditions"],
                    "properties": {
                        "id": {"type": "string"},
                        "temperature_c": {"type": "integer"},
                        "conditions": {"type": "string"},
                    },
                },
            }
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Current temperature (Celsius) and conditions in a city.",
                "input_schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["city"],
                    "properties": {"city": {"type": "string", "description": "City name, e.g. Paris."}},
                },
                "semantics": {"operation": "get", "collection": "weather.cities", "id_arg": "city"},
            }
        ],
        "seed": {
            "weather.cities": [
                {"id": c, "temperature_c": t, "conditions": k} for c, (t, k) in weather.items()
            ]
        },
    }
    people = {
        "name": "contacts",
        "category": "Productivity",
        "description": "The user's contacts and the city each lives in.",
        "entities": [
            {
                "collection": "contacts.people",
                "description": "A contact, by first name.",
                "id_prefix": "person",
                "record_schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "city"],
                    "properties": {"id": {"type": "string"}, "city": {"type": "string"}},
                },
            }
        ],
        "tools": [
            {
                "name": "find_person",
                "description": "Look a contact up by first name; returns the city they live in.",
                "input_schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "description": "First name, e.g. Ana."}},
                },
                "semantics": {"operation": "get", "collection": "contacts.people", "id_arg": "name"},
            }
        ],
        "seed": {"contacts.people": [{"id": p, "city": c} for p, c in homes.items()]},
    }
    return wx, people, weather, homes


def _call(tool: str, key: str, value: str) -> dict:
    return {"tool": tool, "arguments": {key: value}}


def _tasks(rng: random.Random, weather: dict[str, tuple[int, str]], homes: dict[str, str]) -> list[dict]:
    cities, people = CITIES[:], PEOPLE[:]
    rng.shuffle(cities)
    rng.shuffle(people)
    test_cities, test_people = set(cities[: len(cities) // 4]), set(people[: len(people) // 4])
    tasks: list[dict] = []
    wx, who = "weather__get_weather", "contacts__find_person"

    def weather_facts(city: str) -> list[str]:
        t, k = weather[city]
        return [f"{t}", k]

    for city in CITIES:
        t, k = weather[city]
        tasks.append(
            {
                "id": f"weather-{city.lower()}",
                "agent_id": "compact",
                "difficulty": "simple",
                "tags": ["weather", "one-call"],
                "split": "test" if city in test_cities else "train",
                "instruction": rng.choice(WEATHER_ASKS).format(city=city),
                "gold": [
                    {"calls": [_call(wx, "city", city)]},
                    {"answer": f"It is {t} C and {k} in {city}."},
                ],
                "rubric": {
                    "criteria": [
                        {"id": "looked-up", "kind": "call", "tool": wx, "args": {"city": city}},
                        {"id": "answer", "kind": "answer", "facts": weather_facts(city), "weight": 2},
                    ]
                },
            }
        )
    for name in PEOPLE:
        city = homes[name]
        split = "test" if name in test_people else "train"
        tasks.append(
            {
                "id": f"home-{name.lower()}",
                "agent_id": "compact",
                "difficulty": "simple",
                "tags": ["contacts", "one-call"],
                "split": split,
                "instruction": rng.choice(HOME_ASKS).format(name=name),
                "gold": [{"calls": [_call(who, "name", name)]}, {"answer": f"{name} lives in {city}."}],
                "rubric": {
                    "criteria": [
                        {"id": "looked-up", "kind": "call", "tool": who, "args": {"name": name}},
                        {"id": "answer", "kind": "answer", "facts": [city], "weight": 2},
                    ]
                },
            }
        )
        t, k = weather[city]
        tasks.append(
            {
                "id": f"home-weather-{name.lower()}",
                "agent_id": "compact",
                "difficulty": "complex",
                "tags": ["contacts", "weather", "two-calls"],
                "split": split,
                "instruction": rng.choice(HOME_WEATHER_ASKS).format(name=name),
                "gold": [
                    {"calls": [_call(who, "name", name)]},
                    {"calls": [_call(wx, "city", city)]},
                    {"answer": f"{name} lives in {city}, where it is {t} C and {k}."},
                ],
                "rubric": {
                    "criteria": [
                        {
                            "id": "order",
                            "kind": "checkpoint",
                            "sequence": [
                                {"tool": who, "args": {"name": name}},
                                {"tool": wx, "args": {"city": city}},
                            ],
                        },
                        {"id": "answer", "kind": "answer", "facts": weather_facts(city), "weight": 2},
                    ]
                },
            }
        )
    return tasks


def _dump(path: Path, header: str, data: object) -> None:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
    path.write_text(f"# {header}\n{text}", encoding="utf-8")


def main() -> None:
    rng = random.Random(0)
    wx, people, weather, homes = _domains(rng)
    tools, suite = ROOT / "tools" / "compact", ROOT / "tasks" / "compact"
    (suite / "tasks").mkdir(parents=True, exist_ok=True)
    tools.mkdir(parents=True, exist_ok=True)
    made = "Generated by scripts/make_compact_suite.py (seed 0); edit that script, not this file."
    _dump(tools / "weather.yaml", made, wx)
    _dump(tools / "contacts.yaml", made, people)
    _dump(
        suite / "agents.yaml",
        made,
        [
            {
                "id": "compact",
                "name": "Weather and contacts assistant",
                "domains": ["weather", "contacts"],
                "system_prompt": SYSTEM,
                "tools": ["weather__get_weather", "contacts__find_person"],
            }
        ],
    )
    _dump(suite / "tasks" / "tasks.yaml", made, _tasks(rng, weather, homes))
    _dump(
        suite / "suite.yaml",
        made + "\nThe compact suite: two tools, short prompts, train/test split by city and person.",
        {"name": "compact", "world": "compact", "agents": "agents.yaml", "tasks": ["tasks/*.yaml"]},
    )


if __name__ == "__main__":
    main()
