import type { Catalog } from './zh-CN';

/** English catalog: same keys as zh-CN (the source), checked by the type and by tests. */
const en: Catalog = {
  'app.title': 'Shouhu',
  'app.subtitle': 'Care for left-behind children',
  'app.window_title': 'Shouhu · Care for left-behind children',
  'app.version': 'Version {version}',
  'app.loading': 'Loading…',
  'app.offline_first': 'Data stays on this computer; works without a network.',

  'home.welcome': 'Welcome to Shouhu',
  'home.children': 'Child records',
  'home.households': 'Households',
  'home.visits': 'Home visits',
  'home.schools': 'Schools',
  'home.pending': 'Changes to sync',
  'home.intro':
    'A workspace for staff who care for left-behind children: child records, home visits, support plans and more are coming soon.',

  'nav.home': 'Home',
  'nav.children': 'Child records',
  'nav.home_visits': 'Home visits',
  'nav.support_plans': 'Support plans',
  'nav.counseling': 'Counseling',
  'nav.assistance': 'Assistance records',
  'nav.dropout_prevention': 'Dropout prevention',
  'nav.family_contact': 'Family contact',
  'nav.safety_education': 'Safety education',
  'nav.screening': 'Screening',
  'nav.sync': 'Sync',
  'nav.settings': 'Settings',

  'lang.label': 'Language',
  'lang.zh-CN': '中文',
  'lang.en': 'English',

  'status.offline': 'Offline',
  'status.online': 'Online',

  'error.title': 'Something went wrong',
  'error.internal': 'Internal error. Please restart the app; if it happens again, contact your administrator.',
  'error.bridge_unavailable': 'Not connected to the desktop app. Please open this page from the Shouhu app.',
  'error.child.id_number_invalid': 'The 18th digit (check digit) of the ID number is wrong. Please check it.',
  'error.child.name_required': "Please enter the child's name.",
};

export default en;
