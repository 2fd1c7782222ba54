"""A seeded synthetic e-commerce world for the ``demo`` command and tests.

Items have a brand (with a price tier and a style), a category, a product type and a shade or
scent; every attribute is written into the item's text. Each user has hidden tastes over a
category, a style and a shade family, and clicks items by taste times popularity. So the
text carries the signal: a model that reads the clicked titles can infer the tastes, while
popularity only knows what everybody buys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CATEGORIES = {
    "Makeup": ["Lipstick", "Mascara", "Eyeliner", "Foundation", "Blush"],
    "Skin Care": ["Moisturizer", "Serum", "Cleanser", "Sunscreen", "Face Mask"],
    "Hair Care": ["Shampoo", "Conditioner", "Hair Oil", "Hair Spray"],
    "Fragrance": ["Eau de Parfum", "Body Mist", "Cologne"],
    "Bath & Body": ["Body Wash", "Bath Bomb", "Body Lotion", "Hand Cream"],
    "Tools & Accessories": ["Brush Set", "Sponge", "Hair Dryer", "Mirror"],
}
STYLES = {
    "organic": (["Green", "Botanic", "Earth", "Pure", "Leaf"], ["Natural", "Vegan", "Organic"], (8, 25)),
    "luxury": (["Aurum", "Velvet", "Maison", "Regal", "Opaline"], ["Luxe", "Silk", "Couture"], (40, 120)),
    "budget": (["Quick", "Daily", "Basic", "Sunny", "Value"], ["Everyday", "Simple", "Fresh"], (3, 12)),
    "pro": (["Studio", "Precision", "Salon", "Derma", "Lab"], ["Professional", "Long-Lasting", "Clinical"], (15, 45)),
}
SHADES = {
    "warm": ["Coral", "Amber", "Peach", "Copper", "Vanilla"],
    "cool": ["Berry", "Lavender", "Ocean", "Mint", "Plum"],
    "neutral": ["Nude", "Ivory", "Sand", "Taupe", "Musk"],
}
BRAND_SUFFIXES = ["Beauty", "Labs", "& Co", "Cosmetics"]


@dataclass(frozen=True)
class DemoItem:
    """One product of the demo catalog."""

    item_id: str
    title: str
    brand: str
    category: str
    price: float
    style: str
    shade_family: str

    def text(self) -> str:
        """The item's serialized attributes, as a scorer reads them."""
        return f"{self.title}. Brand: {self.brand}. Category: Beauty > {self.category}. Price: ${self.price:.2f}"


@dataclass
class DemoWorld:
    """Items and users' click sequences (item indices, in order)."""

    items: list[DemoItem]
    sequences: list[list[int]]
    popularity_weight: np.ndarray


def generate_world(n_items: int = 600, n_users: int = 3000, min_clicks: int = 5, max_clicks: int = 8, seed: int = 0) -> DemoWorld:
    """Generate the demo catalog and users' clicks.

    Args:
        n_items: catalog size.
        n_users: number of users.
        min_clicks: fewest clicks per user (cold-user evaluation needs K + 1).
        max_clicks: most clicks per user.
        seed: everything is a function of the seed.

    Returns:
        A :class:`DemoWorld`.
    """
    rng = np.random.default_rng(seed)
    brands = []
    for style, (stems, _, _) in STYLES.items():
        for stem in stems:
            brands.append((f"{stem} {BRAND_SUFFIXES[len(brands) % len(BRAND_SUFFIXES)]}", style))
    categories = list(CATEGORIES)
    items = []
    for index in range(n_items):
        brand, style = brands[rng.integers(len(brands))]
        category = categories[rng.integers(len(categories))]
        kind = CATEGORIES[category][rng.integers(len(CATEGORIES[category]))]
        family = list(SHADES)[rng.integers(len(SHADES))]
        shade = SHADES[family][rng.integers(len(SHADES[family]))]
        adjective = STYLES[style][1][rng.integers(3)]
        low, high = STYLES[style][2]
        price = float(np.round(rng.uniform(low, high), 2))
        items.append(DemoItem(f"D{index:05d}", f"{brand} {adjective} {shade} {kind}", brand, category, price, style, family))
    # Zipf-like popularity, so the popularity baseline is a real competitor.
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.5
    popularity = popularity[rng.permutation(n_items)]
    item_category = np.array([categories.index(i.category) for i in items])
    item_style = np.array([list(STYLES).index(i.style) for i in items])
    item_family = np.array([list(SHADES).index(i.shade_family) for i in items])
    sequences = []
    for _ in range(n_users):
        liked_categories = rng.choice(len(categories), size=2, replace=False)
        style = rng.integers(len(STYLES))
        family = rng.integers(len(SHADES))
        affinity = (
            3.0 * np.isin(item_category, liked_categories)
            + 3.0 * (item_style == style)
            + 2.0 * (item_family == family)
        )
        weights = popularity * np.exp(affinity)
        n_clicks = int(rng.integers(min_clicks, max_clicks + 1))
        clicks = rng.choice(n_items, size=n_clicks, replace=False, p=weights / weights.sum())
        sequences.append([int(c) for c in clicks])
    return DemoWorld(items=items, sequences=sequences, popularity_weight=popularity)


def demo_dataset(n_items: int = 600, n_users: int = 3000, seed: int = 0):
    """The demo world as a :class:`~coldstart_peft.data.schema.Dataset`, so every split,
    serializer and baseline of the library applies to it unchanged."""
    from coldstart_peft.data.schema import Dataset, Interaction, Item

    world = generate_world(n_items=n_items, n_users=n_users, seed=seed)
    items = {
        i.item_id: Item(
            item_id=i.item_id, title=i.title, brand=i.brand, categories=("Beauty", i.category),
            price=i.price, domain=i.category,
        )
        for i in world.items
    }
    interactions = [
        Interaction(user_id=f"U{u:05d}", item_id=world.items[index].item_id, order=float(position))
        for u, sequence in enumerate(world.sequences)
        for position, index in enumerate(sequence)
    ]
    return Dataset(name="demo", items=items, interactions=interactions).validate()
