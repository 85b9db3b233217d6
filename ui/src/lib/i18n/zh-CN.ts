/**
 * Source catalog (zh-CN). Every string the UI shows comes from here.
 * Keys are semantic (`area.thing`); `{name}` placeholders are filled by `t()`.
 * Error keys are `error.<code>` where `<code>` is the backend's AppError code.
 */
const zhCN = {
  'app.title': '守护',
  'app.subtitle': '留守儿童关爱',
  'app.window_title': '守护 · 留守儿童关爱',
  'app.version': '版本 {version}',
  'app.loading': '正在加载…',
  'app.offline_first': '数据保存在本机，无网络也能使用。',

  'home.welcome': '欢迎使用守护',
  'home.children': '儿童档案',
  'home.households': '家庭',
  'home.visits': '家访记录',
  'home.schools': '学校',
  'home.pending': '待同步修改',
  'home.intro': '为留守儿童关爱工作人员准备的工作台：儿童档案、家访记录、帮扶计划等功能即将上线。',

  'nav.home': '首页',
  'nav.children': '儿童档案',
  'nav.home_visits': '家访记录',
  'nav.support_plans': '帮扶计划',
  'nav.counseling': '心理辅导',
  'nav.assistance': '救助记录',
  'nav.dropout_prevention': '控辍保学',
  'nav.family_contact': '亲情联系',
  'nav.safety_education': '安全教育',
  'nav.screening': '排查',
  'nav.sync': '同步',
  'nav.settings': '设置',

  'lang.label': '语言',
  'lang.zh-CN': '中文',
  'lang.en': 'English',

  'status.offline': '离线',
  'status.online': '在线',

  'error.title': '出错了',
  'error.internal': '程序内部出错，请重启软件；如果仍然出现，请联系管理员。',
  'error.bridge_unavailable': '未连接到桌面程序，请从“守护”应用中打开。',
  'error.child.id_number_invalid': '身份证号第18位校验码不正确，请核对。',
  'error.child.name_required': '请填写儿童姓名。',
} as const;

export type MessageKey = keyof typeof zhCN;
export type Catalog = Record<MessageKey, string>;

export default zhCN satisfies Catalog;
