//! The shop itself: Turkish names and places, the product catalogue, blog pages, campaigns.
//!
//! Everything here is fixed text or a pure function of constants, so every generated store
//! sells the same products at the same prices whatever its seed: only the customers and what
//! they do change with the seed.

use super::rng::{Rand, mix, skewed_index, unit};

/// Female first names (with the letters that trip up naive code: ç ğ ı İ ö ş ü).
pub(crate) const FEMALE_NAMES: &[&str] = &[
    "Ayşe", "Fatma", "Emine", "Hatice", "Zeynep", "Elif", "Meryem", "Şerife", "Zehra", "Sultan",
    "Merve", "Özlem", "Esra", "Çağla", "İpek", "Işıl", "Gülşen", "Büşra", "Derya", "Sevgi",
    "Tuğba", "Ebru", "Gizem", "Aslı", "Nur", "Şeyma", "Gül", "Öykü", "Ceren", "Damla", "Selin",
    "İrem", "Duygu", "Yağmur", "Eda", "Pınar", "Hülya", "Songül", "Nazlı", "Sıla", "Ece", "Defne",
    "Begüm", "Müge", "Şule", "Nilüfer", "Gökçe", "Buket", "Dilek", "Hande",
];

/// Male first names.
pub(crate) const MALE_NAMES: &[&str] = &[
    "Mehmet",
    "Mustafa",
    "Ahmet",
    "Ali",
    "Hüseyin",
    "Hasan",
    "İbrahim",
    "İsmail",
    "Osman",
    "Yusuf",
    "Murat",
    "Ömer",
    "Ramazan",
    "Halil",
    "Süleyman",
    "Abdullah",
    "Mahmut",
    "Emre",
    "Burak",
    "Can",
    "Cem",
    "Barış",
    "Oğuz",
    "Tolga",
    "Uğur",
    "Serkan",
    "Gökhan",
    "Kaan",
    "Berk",
    "Onur",
    "Çağrı",
    "Doğan",
    "Şükrü",
    "Özgür",
    "Yiğit",
    "Eren",
    "Arda",
    "Kerem",
    "Tarık",
    "Volkan",
    "Ilgaz",
    "Batuhan",
    "Sinan",
    "Erdem",
    "Cihan",
    "Fırat",
    "Koray",
    "Umut",
    "Alp",
    "Selçuk",
];

/// Family names.
pub(crate) const LAST_NAMES: &[&str] = &[
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Yıldız",
    "Yıldırım",
    "Öztürk",
    "Aydın",
    "Özdemir",
    "Arslan",
    "Doğan",
    "Kılıç",
    "Aslan",
    "Çetin",
    "Kara",
    "Koç",
    "Kurt",
    "Özkan",
    "Şimşek",
    "Polat",
    "Özcan",
    "Korkmaz",
    "Çakır",
    "Erdoğan",
    "Yavuz",
    "Can",
    "Acar",
    "Şen",
    "Aktaş",
    "Güler",
    "Yalçın",
    "Güneş",
    "Bozkurt",
    "Bulut",
    "Keskin",
    "Ünal",
    "Turan",
    "Gül",
    "Özer",
    "Işık",
    "Kaplan",
    "Avcı",
    "Sarı",
    "Tekin",
    "Taş",
    "Köse",
    "Yüksel",
    "Ateş",
    "Aksoy",
    "Çiftçi",
    "Karataş",
    "Uçar",
    "Gündoğdu",
    "Gökçe",
    "Erdem",
    "Altın",
    "Başaran",
    "Çınar",
    "Ağaoğlu",
    "İnce",
    "Önal",
    "Şentürk",
    "Dağdelen",
];

/// Cities of Turkey with rough weights by online-shopping population.
pub(crate) const CITIES: &[(&str, u32)] = &[
    ("İstanbul", 300),
    ("Ankara", 120),
    ("İzmir", 90),
    ("Bursa", 50),
    ("Antalya", 40),
    ("Kocaeli", 30),
    ("Konya", 30),
    ("Adana", 28),
    ("Gaziantep", 20),
    ("Mersin", 20),
    ("Kayseri", 18),
    ("Eskişehir", 18),
    ("Diyarbakır", 16),
    ("Samsun", 16),
    ("Denizli", 14),
    ("Şanlıurfa", 14),
    ("Muğla", 14),
    ("Trabzon", 13),
    ("Tekirdağ", 13),
    ("Sakarya", 13),
    ("Manisa", 13),
    ("Balıkesir", 13),
    ("Aydın", 11),
    ("Hatay", 11),
    ("Malatya", 9),
    ("Erzurum", 9),
    ("Van", 8),
    ("Çanakkale", 8),
    ("Edirne", 7),
    ("Afyonkarahisar", 7),
    ("Sivas", 7),
    ("Ordu", 7),
    ("Kütahya", 6),
    ("Isparta", 6),
    ("Çorum", 6),
    ("Elazığ", 6),
    ("Zonguldak", 6),
    ("Bolu", 5),
    ("Uşak", 5),
    ("Düzce", 5),
    ("Tokat", 5),
    ("Rize", 5),
    ("Nevşehir", 4),
    ("Yalova", 4),
    ("Kırklareli", 4),
    ("Kastamonu", 4),
    ("Karabük", 3),
    ("Ağrı", 3),
    ("Muş", 2),
    ("Bartın", 2),
];

/// Shipping countries (ISO 3166-1 alpha-2). Index 0 is Turkey.
pub(crate) const COUNTRIES: &[&str] = &["TR", "DE", "NL", "AZ", "CY", "GB"];
/// How customers abroad spread over [`COUNTRIES`]`[1..]`.
pub(crate) const ABROAD_WEIGHTS: &[u32] = &[40, 15, 15, 18, 12];
/// A city (in Turkish spelling) for each country of [`COUNTRIES`]`[1..]`.
pub(crate) const ABROAD_CITIES: &[&[&str]] = &[
    &["Berlin", "Köln", "Münih", "Hamburg", "Frankfurt"],
    &["Amsterdam", "Rotterdam", "Lahey"],
    &["Bakü", "Gence"],
    &["Lefkoşa", "Girne", "Gazimağusa"],
    &["Londra", "Manchester"],
];

/// Free e-mail providers popular in Turkey, with weights.
pub(crate) const MAIL_DOMAINS: &[(&str, u32)] = &[
    ("gmail.com", 520),
    ("hotmail.com", 190),
    ("outlook.com", 80),
    ("yandex.com.tr", 60),
    ("icloud.com", 50),
    ("yahoo.com", 20),
];

/// Company domains (B2B buyers and people using their work address).
pub(crate) const COMPANY_DOMAINS: &[&str] = &[
    "anadoluteknik.com.tr",
    "marmaralojistik.com.tr",
    "egeyazilim.com.tr",
    "karadenizinsaat.com.tr",
    "bogazicitekstil.com.tr",
    "akdenizgida.com.tr",
    "trakyaotomotiv.com.tr",
    "kapadokyaturizm.com.tr",
    "ozsahinmakina.com.tr",
    "yesilvadienerji.com",
];

/// University student and staff domains (all ending in `edu.tr`).
pub(crate) const UNIVERSITY_DOMAINS: &[&str] = &[
    "ogr.itu.edu.tr",
    "std.yildiz.edu.tr",
    "metu.edu.tr",
    "ogr.deu.edu.tr",
    "ogr.ege.edu.tr",
    "boun.edu.tr",
    "ug.bilkent.edu.tr",
    "ogr.ktu.edu.tr",
    "ogr.sakarya.edu.tr",
    "hacettepe.edu.tr",
    "ogr.anadolu.edu.tr",
    "std.akdeniz.edu.tr",
];

/// Mobile operator prefixes (Turkcell, Vodafone, Türk Telekom).
pub(crate) const MOBILE_PREFIXES: &[u16] = &[
    530, 531, 532, 533, 534, 535, 536, 537, 538, 539, 541, 542, 543, 544, 545, 546, 547, 548, 549,
    501, 505, 506, 507, 551, 552, 553, 554, 555, 559,
];

/// Month names as they appear in campaign ids (ASCII-folded Turkish).
pub(crate) const MONTH_SLUGS: [&str; 12] = [
    "ocak", "subat", "mart", "nisan", "mayis", "haziran", "temmuz", "agustos", "eylul", "ekim",
    "kasim", "aralik",
];

/// Blog posts and content pages (`page_id` of `blog_viewed`).
pub(crate) const BLOG_PAGES: &[&str] = &[
    "blog-kis-cilt-bakim-rehberi",
    "blog-black-friday-firsat-rehberi",
    "blog-kombin-onerileri",
    "blog-iade-ve-degisim",
    "blog-kargo-takibi-nasil-yapilir",
    "blog-kosu-ayakkabisi-secimi",
    "blog-yilbasi-hediye-rehberi",
    "blog-bebek-uyku-duzeni",
    "blog-telefon-karsilastirma-2025",
    "blog-ev-dekorasyon-fikirleri",
    "blog-kitap-onerileri",
    "blog-kahve-demleme-yontemleri",
];

/// Popup forms (newsletter sign-up, welcome discount); their `campaign_id`.
pub(crate) const POPUP_CAMPAIGNS: &[&str] = &[
    "popup-hosgeldin-indirimi",
    "popup-bulten-kayit",
    "popup-ilk-siparis-kargo-bedava",
];

/// The steps of the checkout, in order (`checkout_step`).
pub(crate) const CHECKOUT_STEPS: [&str; 4] = ["cart", "address", "shipping", "payment"];

/// `payment_method` values: card, havale/EFT and kapıda ödeme.
pub(crate) const PAYMENT_METHODS: [&str; 3] = ["credit_card", "bank_transfer", "cash_on_delivery"];

/// One category of the shop.
struct CategoryDef {
    id: &'static str,
    /// Cheapest and dearest product, in whole lira.
    price: (u32, u32),
    /// How popular the category is (share of browsing).
    weight: u32,
    brands: &'static [&'static str],
}

const CATEGORIES: &[CategoryDef] = &[
    CategoryDef {
        id: "cat-kozmetik",
        price: (60, 1_800),
        weight: 16,
        brands: &[
            "brand-flormar",
            "brand-golden-rose",
            "brand-farmasi",
            "brand-pastel",
            "brand-the-purest-solutions",
            "brand-loreal-paris",
        ],
    },
    CategoryDef {
        id: "cat-ayakkabı",
        price: (350, 5_500),
        weight: 12,
        brands: &[
            "brand-hotiç",
            "brand-derimod",
            "brand-kinetix",
            "brand-lumberjack",
            "brand-nike",
            "brand-adidas",
        ],
    },
    CategoryDef {
        id: "cat-elektronik",
        price: (300, 75_000),
        weight: 12,
        brands: &[
            "brand-arçelik",
            "brand-vestel",
            "brand-samsung",
            "brand-apple",
            "brand-xiaomi",
            "brand-casper",
        ],
    },
    CategoryDef {
        id: "cat-giyim",
        price: (120, 4_500),
        weight: 18,
        brands: &[
            "brand-koton",
            "brand-lc-waikiki",
            "brand-defacto",
            "brand-mavi",
            "brand-colins",
            "brand-vakko",
        ],
    },
    CategoryDef {
        id: "cat-ev-yaşam",
        price: (80, 9_000),
        weight: 9,
        brands: &[
            "brand-english-home",
            "brand-madame-coco",
            "brand-karaca",
            "brand-paşabahçe",
            "brand-tefal",
        ],
    },
    CategoryDef {
        id: "cat-anne-bebek",
        price: (60, 7_500),
        weight: 6,
        brands: &[
            "brand-chicco",
            "brand-prima",
            "brand-sleepy",
            "brand-kraft",
            "brand-ebebek",
        ],
    },
    CategoryDef {
        id: "cat-spor-outdoor",
        price: (150, 12_000),
        weight: 6,
        brands: &[
            "brand-columbia",
            "brand-the-north-face",
            "brand-puma",
            "brand-kinetix",
            "brand-salomon",
        ],
    },
    CategoryDef {
        id: "cat-kitap",
        price: (45, 650),
        weight: 5,
        brands: &[
            "brand-can-yayınları",
            "brand-yapı-kredi-yayınları",
            "brand-iş-bankası-kültür",
            "brand-doğan-kitap",
            "brand-ithaki",
        ],
    },
    CategoryDef {
        id: "cat-oyuncak",
        price: (60, 4_000),
        weight: 4,
        brands: &[
            "brand-lego",
            "brand-barbie",
            "brand-hot-wheels",
            "brand-fen-toys",
            "brand-playmobil",
        ],
    },
    CategoryDef {
        id: "cat-süpermarket",
        price: (20, 1_200),
        weight: 6,
        brands: &[
            "brand-ülker",
            "brand-eti",
            "brand-torku",
            "brand-pınar",
            "brand-sütaş",
            "brand-tat",
        ],
    },
    CategoryDef {
        id: "cat-saat-aksesuar",
        price: (150, 18_000),
        weight: 3,
        brands: &[
            "brand-casio",
            "brand-fossil",
            "brand-daniel-klein",
            "brand-swatch",
        ],
    },
    CategoryDef {
        id: "cat-çanta",
        price: (200, 8_500),
        weight: 3,
        brands: &[
            "brand-deri-sanat",
            "brand-u-s-polo-assn",
            "brand-koton",
            "brand-vakko",
        ],
    },
    CategoryDef {
        id: "cat-pet-shop",
        price: (40, 2_800),
        weight: 2,
        brands: &[
            "brand-pro-plan",
            "brand-royal-canin",
            "brand-reflex",
            "brand-felix",
        ],
    },
    CategoryDef {
        id: "cat-kırtasiye",
        price: (15, 900),
        weight: 2,
        brands: &[
            "brand-faber-castell",
            "brand-adel",
            "brand-staedtler",
            "brand-mopak",
        ],
    },
    CategoryDef {
        id: "cat-mobilya",
        price: (900, 45_000),
        weight: 2,
        brands: &[
            "brand-bellona",
            "brand-istikbal",
            "brand-doğtaş",
            "brand-mondi",
        ],
    },
    CategoryDef {
        id: "cat-yapı-market",
        price: (50, 15_000),
        weight: 2,
        brands: &[
            "brand-bosch",
            "brand-karcher",
            "brand-stanley",
            "brand-black-decker",
        ],
    },
];

/// Products per category.
const PRODUCTS_PER_CATEGORY: u32 = 400;

/// The catalogue: categories, brands and products with prices, all precomputed once.
pub(crate) struct Catalog {
    category_weights: Vec<u32>,
    brand_ids: Vec<&'static str>,
    /// Indices into `brand_ids` per category.
    category_brands: Vec<Vec<u16>>,
    product_ids: Vec<String>,
    /// Price in kuruş (1/100 TL) per product.
    product_prices: Vec<i64>,
    product_brands: Vec<u16>,
    /// A handful of products across the shop that everybody looks at.
    bestsellers: Vec<u32>,
}

impl Catalog {
    /// Builds the (seed-independent) catalogue.
    pub(crate) fn new() -> Self {
        let mut brand_ids: Vec<&'static str> = Vec::new();
        let mut category_brands = Vec::with_capacity(CATEGORIES.len());
        for category in CATEGORIES {
            let mut indices = Vec::with_capacity(category.brands.len());
            for &brand in category.brands {
                let index = match brand_ids.iter().position(|&b| b == brand) {
                    Some(i) => i,
                    None => {
                        brand_ids.push(brand);
                        brand_ids.len() - 1
                    }
                };
                indices.push(index as u16);
            }
            category_brands.push(indices);
        }
        let total = CATEGORIES.len() as u32 * PRODUCTS_PER_CATEGORY;
        let mut product_ids = Vec::with_capacity(total as usize);
        let mut product_prices = Vec::with_capacity(total as usize);
        let mut product_brands = Vec::with_capacity(total as usize);
        for (c, category) in CATEGORIES.iter().enumerate() {
            for i in 0..PRODUCTS_PER_CATEGORY {
                let global = c as u32 * PRODUCTS_PER_CATEGORY + i;
                product_ids.push(format!("p-{:05}", 10_001 + global));
                let h = mix([0x6361_7461_6c6f, u64::from(global)]);
                // Between the category's cheapest and dearest, most of them at the cheap end,
                // ending in ,90 or ,99.
                let (lo, hi) = (f64::from(category.price.0), f64::from(category.price.1));
                let lira = (lo * (hi / lo).powf(unit(h).powf(3.0))).floor() as i64;
                let cents = if h & 1 == 0 { 90 } else { 99 };
                product_prices.push(lira.max(1) * 100 + cents - 100);
                let brands = &category_brands[c];
                product_brands.push(brands[(h >> 8) as usize % brands.len()]);
            }
        }
        // Two bestsellers in each of the six most popular categories.
        let bestsellers = [3u32, 0, 2, 1, 4, 9]
            .iter()
            .flat_map(|&c| [c * PRODUCTS_PER_CATEGORY, c * PRODUCTS_PER_CATEGORY + 1])
            .collect();
        Self {
            category_weights: CATEGORIES.iter().map(|c| c.weight).collect(),
            brand_ids,
            category_brands,
            product_ids,
            product_prices,
            product_brands,
            bestsellers,
        }
    }

    /// A category chosen by popularity.
    pub(crate) fn random_category(&self, rng: &mut Rand) -> u8 {
        rng.weighted(&self.category_weights) as u8
    }

    /// `category_id` text.
    pub(crate) fn category_id(&self, category: u8) -> &'static str {
        CATEGORIES[usize::from(category)].id
    }

    /// `brand_id` text.
    pub(crate) fn brand_id(&self, brand: u16) -> &'static str {
        self.brand_ids[usize::from(brand)]
    }

    /// A brand sold in `category`.
    pub(crate) fn brand_of_category(&self, category: u8, rng: &mut Rand) -> u16 {
        *rng.pick(&self.category_brands[usize::from(category)])
    }

    /// `product_id` text.
    pub(crate) fn product_id(&self, product: u32) -> &str {
        &self.product_ids[product as usize]
    }

    /// List price in kuruş.
    pub(crate) fn price(&self, product: u32) -> i64 {
        self.product_prices[product as usize]
    }

    /// The category a product belongs to.
    pub(crate) fn category_of(&self, product: u32) -> u8 {
        (product / PRODUCTS_PER_CATEGORY) as u8
    }

    /// The brand of a product.
    pub(crate) fn brand_of(&self, product: u32) -> u16 {
        self.product_brands[product as usize]
    }

    /// A product someone with these favourite categories looks at: now and then one of the
    /// shop's bestsellers, mostly something in a favourite category, sometimes anything;
    /// inside a category the first products are looked at far more than the long tail.
    pub(crate) fn pick_product(&self, rng: &mut Rand, favourites: &[u8; 3]) -> u32 {
        let r = rng.unit();
        if r < 0.10 {
            return *rng.pick(&self.bestsellers);
        }
        let category = if r < 0.75 {
            favourites[rng.below(3) as usize]
        } else {
            self.random_category(rng)
        };
        self.product_in(rng, category)
    }

    /// A product of `category`, skewed towards its popular products.
    pub(crate) fn product_in(&self, rng: &mut Rand, category: u8) -> u32 {
        u32::from(category) * PRODUCTS_PER_CATEGORY
            + skewed_index(rng.unit(), PRODUCTS_PER_CATEGORY, 3.0)
    }
}

/// Lower-cases a Turkish name into e-mail-safe ASCII (`Çağla Öztürk` → `cagla`, `ozturk`).
pub(crate) fn ascii_fold(text: &str, out: &mut String) {
    for ch in text.chars() {
        let folded = match ch {
            'ç' | 'Ç' => 'c',
            'ğ' | 'Ğ' => 'g',
            'ı' | 'I' | 'İ' | 'i' => 'i',
            'ö' | 'Ö' => 'o',
            'ş' | 'Ş' => 's',
            'ü' | 'Ü' => 'u',
            ' ' => continue,
            c => c.to_ascii_lowercase(),
        };
        out.push(folded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_consistent() {
        let catalog = Catalog::new();
        assert_eq!(
            catalog.product_ids.len(),
            CATEGORIES.len() * PRODUCTS_PER_CATEGORY as usize
        );
        for p in [0, 399, 400, 6399] {
            let c = catalog.category_of(p);
            let brand = catalog.brand_of(p);
            assert!(catalog.category_brands[usize::from(c)].contains(&brand));
            let price = catalog.price(p);
            let (lo, hi) = CATEGORIES[usize::from(c)].price;
            assert!(
                price >= i64::from(lo - 1) * 100 && price < i64::from(hi) * 100,
                "{price}"
            );
        }
        assert_eq!(catalog.product_id(0), "p-10001");
    }

    #[test]
    fn names_fold_to_ascii() {
        let mut s = String::new();
        ascii_fold("Çağla İpek Işıl Gülşen Öztürk", &mut s);
        assert_eq!(s, "caglaipekisilgulsenozturk");
    }
}
