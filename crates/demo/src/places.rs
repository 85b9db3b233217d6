//! Places: the county (a real Guizhou county name and region code, with
//! invented villages), where parents work, ethnic groups, ID region codes.

pub const PROVINCE: &str = "贵州省";
pub const PREFECTURE: &str = "毕节市";
pub const COUNTY: &str = "织金县";
/// GB/T 2260 code of the county: the first six digits of most children's IDs.
pub const COUNTY_CODE: &str = "520524";
/// Area code of the county's landlines.
pub const AREA_CODE: &str = "0857";

/// Townships (乡镇 and 街道) in the order they are used.
pub const TOWNSHIPS: &[&str] = &[
    "八步街道",
    "珠藏镇",
    "猫场镇",
    "马场镇",
    "以那镇",
    "黑土镇",
    "阿弓镇",
    "牛场镇",
    "熊家场镇",
    "三塘镇",
    "龙场镇",
    "少普镇",
    "桂果镇",
    "白泥镇",
    "化起镇",
    "官寨苗族乡",
    "自强苗族乡",
    "茶店布依族苗族彝族乡",
    "金龙苗族彝族布依族乡",
    "大平苗族彝族乡",
];

/// Village names; each township takes a run of them.
pub const VILLAGES: &[&str] = &[
    "新寨村",
    "大坪村",
    "岩脚村",
    "红岩村",
    "坪寨村",
    "白岩村",
    "中寨村",
    "沙坝村",
    "营上村",
    "关口村",
    "小河村",
    "龙井村",
    "高寨村",
    "杉树村",
    "田坝村",
    "三合村",
    "青山村",
    "石板村",
    "水井村",
    "黄泥村",
    "茶园村",
    "岩头村",
    "松林村",
    "桥头村",
    "凉水村",
    "丫口村",
    "大湾村",
    "梨树村",
    "羊场村",
    "河边村",
    "团结村",
    "和平村",
    "光明村",
    "民主村",
    "新华村",
    "文化村",
    "鸡场村",
    "马鞍村",
    "木弓村",
    "群丰村",
    "双龙村",
    "平桥村",
    "洞口村",
    "竹林村",
    "阳光村",
    "纳雍村",
    "后寨村",
    "堰塘村",
    "兴隆村",
    "箐口村",
];

/// Group numbers as written on cards: 第一组 … 第十二组.
pub const GROUPS: &[&str] = &[
    "第一组",
    "第二组",
    "第三组",
    "第四组",
    "第五组",
    "第六组",
    "第七组",
    "第八组",
    "第九组",
    "第十组",
    "第十一组",
    "第十二组",
];

/// Where parents from this county work, by weight: (province, city).
pub const WORK_PLACES: &[((&str, &str), u32)] = &[
    (("广东省", "东莞市"), 10),
    (("广东省", "深圳市"), 8),
    (("广东省", "广州市"), 6),
    (("广东省", "佛山市"), 5),
    (("广东省", "中山市"), 3),
    (("广东省", "惠州市"), 3),
    (("浙江省", "宁波市"), 6),
    (("浙江省", "杭州市"), 4),
    (("浙江省", "温州市"), 4),
    (("浙江省", "金华市"), 3),
    (("浙江省", "台州市"), 2),
    (("浙江省", "嘉兴市"), 2),
    (("福建省", "厦门市"), 4),
    (("福建省", "泉州市"), 4),
    (("福建省", "福州市"), 3),
    (("江苏省", "苏州市"), 4),
    (("江苏省", "无锡市"), 2),
    (("上海市", "上海市"), 3),
    (("贵州省", "贵阳市"), 5),
    (("贵州省", "毕节市"), 2),
    (("云南省", "昆明市"), 2),
    (("重庆市", "重庆市"), 2),
];

pub const ETHNIC_WEIGHTS: &[(&str, u32)] = &[
    ("汉族", 62),
    ("苗族", 16),
    ("彝族", 8),
    ("布依族", 6),
    ("仡佬族", 3),
    ("侗族", 2),
    ("回族", 2),
    ("白族", 1),
];

/// Region codes on children's IDs: mostly this county, some born elsewhere
/// in Guizhou.
pub const ID_REGIONS: &[(&str, u32)] = &[
    (COUNTY_CODE, 85),
    ("520502", 4),
    ("520521", 3),
    ("520525", 3),
    ("520526", 2),
    ("520103", 2),
    ("520181", 1),
];

pub const GRADES: [&str; 9] = [
    "一年级",
    "二年级",
    "三年级",
    "四年级",
    "五年级",
    "六年级",
    "七年级",
    "八年级",
    "九年级",
];
