"""A demo town in Dongpo District, Meishan: transformer areas, households, meters, care
recipients with consent and contacts, a service team and demo users.

Everything is drawn from one random.Random(seed), in a fixed order, so the same seed gives the
same town on any database.
"""

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from lianxin.care.models import (
    CareRecipient,
    Consent,
    EmergencyContact,
    Feeder,
    Household,
    Membership,
    Meter,
    Team,
    TransformerArea,
)
from lianxin.care.roles import Role, ensure_role_groups
from lianxin.errors import LianxinError
from lianxin.meterdata import deployment_zone

DEMO_PASSWORD = "lianxin-demo"
LOCAL = ZoneInfo(deployment_zone())  # the demo town keeps the deployment's local time

# (characters, pinyin) pairs, so English names are the real romanisation of the Chinese ones.
SURNAMES = [
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("周", "Zhou"),
    ("吴", "Wu"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("胡", "Hu"),
    ("朱", "Zhu"),
    ("高", "Gao"),
    ("林", "Lin"),
    ("何", "He"),
    ("郭", "Guo"),
    ("罗", "Luo"),
    ("苏", "Su"),
    ("杜", "Du"),
    ("邓", "Deng"),
    ("曾", "Zeng"),
    ("谢", "Xie"),
]
GIVEN_MALE = [
    ("建国", "Jianguo"),
    ("德明", "Deming"),
    ("志强", "Zhiqiang"),
    ("国华", "Guohua"),
    ("文斌", "Wenbin"),
    ("永福", "Yongfu"),
    ("长林", "Changlin"),
    ("树森", "Shusen"),
    ("洪亮", "Hongliang"),
    ("正清", "Zhengqing"),
    ("玉山", "Yushan"),
    ("家福", "Jiafu"),
]
GIVEN_FEMALE = [
    ("秀英", "Xiuying"),
    ("桂兰", "Guilan"),
    ("淑芬", "Shufen"),
    ("玉珍", "Yuzhen"),
    ("凤英", "Fengying"),
    ("素华", "Suhua"),
    ("翠萍", "Cuiping"),
    ("惠珍", "Huizhen"),
    ("明芳", "Mingfang"),
    ("丽华", "Lihua"),
    ("月娥", "Yue'e"),
    ("兰芝", "Lanzhi"),
]
GIVEN_YOUNG = [
    ("伟", "Wei"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("磊", "Lei"),
    ("洋", "Yang"),
    ("婷", "Ting"),
    ("浩", "Hao"),
    ("丹", "Dan"),
    ("杰", "Jie"),
    ("琳", "Lin"),
    ("涛", "Tao"),
    ("倩", "Qian"),
]
RELATIONS = [
    ("儿子", "son"),
    ("女儿", "daughter"),
    ("侄子", "nephew"),
    ("邻居", "neighbour"),
    ("社区网格员", "community grid worker"),
]

# Streets of Dongpo District (东坡区), Meishan, with their pinyin.
STREETS = [
    ("三苏路", "Sansu Road"),
    ("湖滨路", "Hubin Road"),
    ("东坡大道", "Dongpo Avenue"),
    ("裕丰街", "Yufeng Street"),
    ("醴泉路", "Liquan Road"),
    ("苏祠路", "Suci Road"),
    ("诗书路", "Shishu Road"),
    ("环湖路", "Huanhu Road"),
    ("府街", "Fu Street"),
    ("下西街", "Xiaxi Street"),
]
COMMUNITIES = [
    ("苏祠社区", "Suci Community"),
    ("裕丰社区", "Yufeng Community"),
    ("湖滨社区", "Hubin Community"),
    ("廉租房小区", "Low-rent Housing Estate"),
]
FEEDERS = [
    ("10kV城东线", "10kV Chengdong Line", "东坡变电站"),
    ("10kV湖滨线", "10kV Hubin Line", "湖滨变电站"),
    ("10kV苏祠线", "10kV Suci Line", "东坡变电站"),
]

# Central Meishan; homes are scattered within about 2 km.
CENTER = (Decimal("30.048300"), Decimal("103.831200"))


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    full_name: str


DEMO_USERS = [
    DemoUser("admin", Role.ADMIN, "系统管理员"),
    DemoUser("lead", Role.TEAM_LEAD, "王志强"),
    DemoUser("operator", Role.DUTY_OPERATOR, "李敏"),
    DemoUser("operator2", Role.DUTY_OPERATOR, "陈静"),
    DemoUser("field1", Role.FIELD_MEMBER, "张磊"),
    DemoUser("field2", Role.FIELD_MEMBER, "刘浩"),
    DemoUser("field3", Role.FIELD_MEMBER, "杨洋"),
    DemoUser("wall", Role.WALL, "值班室大屏"),
]


@dataclass
class SeedSummary:
    feeders: int
    transformer_areas: int
    households: int
    meters: int
    care_recipients: int
    users: list[DemoUser]
    created: bool


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}"


def _name(rng: random.Random, pool) -> tuple[str, str]:
    surname, surname_py = rng.choice(SURNAMES)
    given, given_py = rng.choice(pool)
    return surname + given, f"{surname_py} {given_py}"


def is_seeded() -> bool:
    return Household.objects.exists()


@transaction.atomic
def seed_demo_town(seed: int = 2021, households: int = 240, areas: int = 10) -> SeedSummary:
    """Create the demo town. Refuses to run on a database that already has households."""
    if households < 1 or areas < 1:
        raise LianxinError("the demo town needs at least one household and one transformer area")
    if is_seeded():
        raise LianxinError("the database already has households; the demo town was not seeded")
    ensure_role_groups()
    rng = random.Random(seed)

    feeders = [
        Feeder.objects.create(code=f"FD{i + 1:03d}", name=name, substation=sub)
        for i, (name, _en, sub) in enumerate(FEEDERS)
    ]
    tas = []
    for i in range(areas):
        street, street_en = STREETS[i % len(STREETS)]
        tas.append(
            TransformerArea.objects.create(
                code=f"TA{5114020000 + i + 1}",
                name=f"{street}{i // len(STREETS) + 1}号台区",
                name_en=f"{street_en} No. {i // len(STREETS) + 1} transformer area",
                feeder=feeders[i % len(feeders)],
            )
        )

    team = Team.objects.create(name="连心桥服务队", name_en="Lianxin Bridge Service Team")
    team2 = Team.objects.create(name="湖滨服务队", name_en="Hubin Service Team")
    users = _create_users(rng, [team, team2])

    homes = []
    meters = []
    for i in range(households):
        ta = tas[i % areas]
        street, street_en = STREETS[tas.index(ta) % len(STREETS)]
        community, community_en = COMMUNITIES[rng.randrange(len(COMMUNITIES))]
        number = rng.randint(1, 300)
        building, unit, room = (
            rng.randint(1, 12),
            rng.randint(1, 4),
            rng.choice([101, 201, 302, 402, 501, 602]),
        )
        home = Household(
            code=f"H{i + 1:05d}",
            address=f"四川省眉山市东坡区{street}{number}号{community}{building}栋{unit}单元{room}室",
            address_en=f"Room {room}, Unit {unit}, Building {building}, {community_en}, "
            f"{number} {street_en}, Dongpo District, Meishan, Sichuan",
            community=community,
            transformer_area=ta,
            # Homes cluster around their transformer area's spot (a few hundred metres), as
            # homes on one transformer do, so the map's areas are places.
            latitude=_near(_area_spot(tas.index(ta), areas)[0], rng.randint(-20000, 20000)),
            longitude=_near(_area_spot(tas.index(ta), areas)[1], rng.randint(-20000, 20000)),
        )
        homes.append(home)
    Household.objects.bulk_create(homes)
    homes = list(Household.objects.order_by("code"))
    for i, home in enumerate(homes):
        account = f"31{rng.randint(10_000_000, 99_999_999)}"
        meters.append(
            Meter(
                number=f"3330001{i + 1:08d}{rng.randint(1000000, 9999999)}",
                account_number=account,
                household=home,
                kind=Meter.Kind.ELECTRICITY,
                interval_minutes=15,
                prepaid=rng.random() < 0.3,
                installed_on=date(2019, 1, 1) + timedelta(days=rng.randint(0, 900)),
            )
        )
        if rng.random() < 0.15:
            meters.append(
                Meter(
                    number=f"WM{i + 1:08d}",
                    account_number=f"W{account}",
                    household=home,
                    kind=Meter.Kind.WATER,
                    interval_minutes=60,
                )
            )
    Meter.objects.bulk_create(meters)

    recipients = _create_care_recipients(rng, homes, [team, team2], users)
    return SeedSummary(
        feeders=len(feeders),
        transformer_areas=len(tas),
        households=len(homes),
        meters=len(meters),
        care_recipients=recipients,
        users=DEMO_USERS,
        created=True,
    )


def _area_spot(i: int, areas: int) -> tuple[Decimal, Decimal]:
    """Where transformer area i sits: on a grid around the town centre, about 1.2 km apart."""
    cols = max(1, round(areas**0.5))
    rows = -(-areas // cols)
    row, col = divmod(i, cols)
    return (
        CENTER[0] + Decimal(row * 2 - rows + 1) * Decimal("0.006"),
        CENTER[1] + Decimal(col * 2 - cols + 1) * Decimal("0.007"),
    )


def _near(centre: Decimal, step: int) -> Decimal:
    # up to ±0.004° (about 400 m), at the field's six decimal places
    return (centre + Decimal(step) / Decimal(5_000_000)).quantize(Decimal("0.000001"))


def _create_users(rng, teams):
    User = get_user_model()
    users = {}
    for demo in DEMO_USERS:
        user = User.objects.create_user(
            demo.username,
            password=DEMO_PASSWORD,
            first_name=demo.full_name,
            is_staff=demo.role in (Role.ADMIN, Role.TEAM_LEAD),
            is_superuser=demo.role == Role.ADMIN,
        )
        user.groups.add(Group.objects.get(name=demo.role))
        if demo.role not in (Role.ADMIN, Role.WALL):
            # Field members 1-2 and the lead in the first team; field3 in the second.
            team = teams[1] if demo.username == "field3" else teams[0]
            Membership.objects.create(team=team, user=user, phone=_phone(rng))
        users[demo.username] = user
    return users


def _create_care_recipients(rng, homes, teams, users) -> int:
    chosen = sorted(rng.sample(range(len(homes)), k=max(1, len(homes) // 6)))
    count = 0
    for n, idx in enumerate(chosen):
        home = homes[idx]
        if n == 0:
            # The story's first special relative: an 86-year-old (in 2021) war veteran.
            name, name_en, born, notes = (
                "杜德明",
                "Du Deming",
                1935,
                "抗美援朝老兵，独居，听力较弱，请大声说话。",
            )
        else:
            female = rng.random() < 0.6
            name, name_en = _name(rng, GIVEN_FEMALE if female else GIVEN_MALE)
            born = rng.randint(1932, 1956)
            notes = rng.choice(
                [
                    "",
                    "独居，子女在外地。",
                    "行动不便，使用助行器。",
                    "患有高血压，每天早上服药。",
                    "空巢老人，老伴已故。",
                ]
            )
        nap = rng.random() < 0.3  # an afternoon nap: quiet hours the engine should respect
        team = teams[0] if home.community != "湖滨社区" else teams[1]
        recipient = CareRecipient.objects.create(
            name=name,
            name_en=name_en,
            birth_year=born,
            phone=_phone(rng),
            household=home,
            team=team,
            risk_notes=notes,
            sensitivity=rng.choice(["normal", "normal", "high", "low"]),
            usual_wake_time=time(rng.randint(5, 7), rng.choice([0, 15, 30, 45]))
            if rng.random() < 0.5
            else None,
            quiet_hours_start=time(13, 0) if nap else None,
            quiet_hours_end=time(14, 30) if nap else None,
            enrolled_on=date(2021, 3, 1) + timedelta(days=rng.randint(0, 1500)),
        )
        given = datetime.combine(recipient.enrolled_on, time(10, 0), tzinfo=LOCAL)
        Consent.objects.create(
            care_recipient=recipient,
            scope=Consent.Scope.MONITORING,
            given_at=given,
            given_by="本人",
            recorded_by=users["lead"],
        )
        for priority in range(1, rng.randint(1, 3) + 1):
            relation, _relation_en = rng.choice(RELATIONS)
            contact_name, _ = _name(rng, GIVEN_YOUNG)
            EmergencyContact.objects.create(
                care_recipient=recipient,
                name=contact_name,
                relation=relation,
                phone=_phone(rng),
                notify_by=rng.choice(["phone", "phone", "sms", "wechat"]),
                priority=priority,
            )
        count += 1
    return count
