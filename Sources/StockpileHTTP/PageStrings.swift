import StockpileCore

/// The pages' words, one table per language; zh-CN first (SPEC.md "Web pages"). Templates read
/// them as {{t.key}}; a key missing from English falls back to Chinese.
enum PageLanguage: String, Sendable {
    case zh, en

    var htmlLang: String { self == .zh ? "zh-CN" : "en" }

    var strings: [String: String] {
        self == .zh ? PageStrings.zh : PageStrings.zh.merging(PageStrings.en) { _, english in english }
    }

    func band(_ band: CoverBand) -> String { strings["band." + band.rawValue] ?? band.rawValue }
    func kind(_ kind: String) -> String { strings["kind." + kind] ?? kind }
}

enum PageStrings {
    static let zh: [String: String] = [
        "app": "应急物资储备", "dashboard": "指挥中心", "entry": "库存登记", "login": "登录", "logout": "退出",
        "language": "English", "languageSwitch": "en", "skip": "跳到正文",
        "token": "访问令牌", "tokenHint": "管理员发放的令牌，以 sp_ 开头", "signIn": "登录", "badToken": "令牌无效、已过期或已吊销",
        "asOf": "统计日期", "freshness": "最近一次登记", "noMovements": "尚无登记", "source": "数据来源", "renderedIn": "服务器耗时",
        "dataLag": "数据延迟", "fromReplica": "来自只读副本", "fromPrimary": "来自主库", "replicaFallback": "只读副本未用", "replicaBehind": "副本落后",
        "filters": "筛选", "region": "区域", "allRegions": "全部区域", "category": "类别", "allCategories": "全部类别",
        "designated": "定点救治医院", "any": "不限", "yes": "是", "no": "否", "apply": "应用",
        "heatmap": "机构 × 物资 保障天数", "legend": "图例", "facility": "机构", "item": "物资",
        "shortfalls": "缺口最大的品种", "shortfallQty": "实物缺口", "physicalDays": "实物天数", "totalDays": "合计天数",
        "targetDays": "目标天数", "dailyDemand": "日需求", "band": "保障等级", "sortBy": "按此列排序",
        "regionTotals": "区域合计", "facilities": "机构数", "positions": "品种数", "physicalQty": "实物库存",
        "contractQty": "合同储备", "capacityQty": "产能储备", "expiringQty": "将过期数量", "total": "合计",
        "cover": "各物资保障情况", "layers": "储备构成", "physical": "实物", "contract": "合同", "capacity": "产能",
        "days": "天", "unbounded": "无需求", "lots": "批次与有效期", "lot": "批号", "expiry": "有效期至", "quantity": "数量",
        "expiring": "临期", "expired": "已过期", "noExpiry": "无", "inTransit": "在途调拨单", "order": "调拨单",
        "from": "调出", "to": "调入", "status": "状态", "recent": "最近登记", "kindLabel": "类型", "reason": "原因",
        "occurredAt": "发生时间", "recordedBy": "登记人", "balanceAfter": "登记后结存", "none": "无",
        "kind.receipt": "入库", "kind.issue": "出库（消耗）", "kind.adjustment": "调整（报损/盘盈）", "kind.count": "盘点",
        "kind.transfer_out": "调出", "kind.transfer_in": "调入",
        "obTitle": "本设备的登记", "obSend": "立即发送", "ob.online": "在线", "ob.offline": "离线：登记保存在本设备，联网后自动发送",
        "ob.listsAsOf": "清单更新于", "ob.counts": "{w} 条待发送 · {a} 条需处理", "ob.lastSent": "上次发送", "ob.signIn": "请重新登录后发送",
        "ob.saved": "已保存在本设备", "ob.storageFailed": "无法保存在本设备，本条未保存", "ob.onHand": "现有",
        "st.waiting": "待发送", "st.recorded": "已登记", "st.replay": "已登记（重复发送，只计一次）", "st.refused": "需处理",
        "st.otherUser": "等待 {user} 登录后发送",
        "entryIntro": "扫码枪扫描物资编码后按回车会跳到下一栏。每张表单只会记一次，重复提交不会重复计数。",
        "itemHint": "物资编码，可扫码", "lotHint": "批号，可扫码", "expiryHint": "入库时填写，格式 YYYY-MM-DD",
        "quantityHint": "基本单位的整数；盘点时填实盘数", "reasonHint": "调整必须选择原因",
        "adjustReason": "调整原因", "reason.loss": "丢失", "reason.damage": "损坏", "reason.expired": "过期报废",
        "reason.found": "盘盈/找回", "note": "备注", "submit": "提交登记",
        "recorded": "已登记", "replayed": "这张表单此前已提交，未重复计数", "newBalance": "该物资在本机构的结存",
        "lotBalance": "该批次结存", "errors": "请更正以下内容后再提交",
        "err.id": "表单编号无效，请刷新页面后重新填写", "err.facility": "请选择机构", "err.item": "请填写物资编码",
        "err.lot": "请填写批号", "err.kind": "请选择登记类型", "err.quantity": "数量必须是正整数（盘点可为 0）",
        "err.unavailableTitle": "暂时无法访问", "err.unavailable": "数据库暂时不可用（正在重启或恢复）。已提交的登记不会丢失；请稍候几秒后刷新本页，表单可用同一编号再次提交。",
        "err.expiry": "有效期格式应为 YYYY-MM-DD", "err.expiryNeeded": "该物资有有效期：新批号首次入库必须填写有效期",
        "err.held": "该批号已被暂停使用（召回或待检），不能出库或调出", "err.reason": "调整必须选择原因（丢失、损坏、过期报废或盘盈）",
        "err.occurred_at": "发生时间无效", "err.unknown": "未找到该物资或机构编码", "err.stock": "库存不足，无法出库或报损",
        "err.conflict": "此表单编号已用于另一笔不同的登记，请刷新页面", "err.expiryMismatch": "该批号已登记的有效期与填写的不同",
        "err.forbidden": "您的令牌不能为该机构登记", "err.csrf": "表单已失效，请刷新页面后重试", "err.busy": "系统繁忙，请稍后用同一表单重试",
        "band.stockout": "断货", "band.<3d": "不足3天", "band.3-7d": "3–7天", "band.7-14d": "7–14天",
        "band.14-N": "14天至目标", "band.>=N": "达到目标",
        "notFound": "未找到该机构，或您无权查看", "forbidden": "您的角色不能使用此页面",
        "orders": "调拨单", "actions": "操作", "approve": "批准", "cancel": "取消", "dispatch": "发出", "receive": "签收", "receivedOf": "实收", "shortReason": "少收原因（少收时必填）",
        "cancelReason": "取消原因", "err.action": "未知的操作", "err.order": "该调拨单不能执行此操作",
        "status.proposed": "待批准", "status.approved": "已批准", "status.dispatched": "在途", "status.received": "已签收",
        "status.cancelled": "已取消",
        "report": "夜间补货报告", "noReport": "该日期尚无夜间报告（stockpile nightly 每晚生成）", "printable": "打印版",
        "downloadCSV": "下载 CSV", "firstRows": "页面只显示前 50 行，完整内容请下载 CSV",
    ]

    static let en: [String: String] = [
        "app": "Emergency supply reserves", "dashboard": "Command centre", "entry": "Stock entry", "login": "Sign in", "logout": "Sign out",
        "language": "中文", "languageSwitch": "zh", "skip": "Skip to content",
        "token": "Access token", "tokenHint": "The token an administrator issued, starting with sp_", "signIn": "Sign in",
        "badToken": "The token is unknown, expired or revoked",
        "asOf": "As of", "freshness": "Last recorded", "noMovements": "nothing recorded yet", "source": "Source", "renderedIn": "Server time",
        "dataLag": "Data lag", "fromReplica": "from the read replica", "fromPrimary": "from the primary", "replicaFallback": "read replica not used", "replicaBehind": "it is behind by",
        "filters": "Filters", "region": "Region", "allRegions": "All regions", "category": "Category", "allCategories": "All categories",
        "designated": "Designated hospital", "any": "Any", "yes": "Yes", "no": "No", "apply": "Apply",
        "heatmap": "Days of cover, facility × item", "legend": "Legend", "facility": "Facility", "item": "Item",
        "shortfalls": "Largest shortfalls", "shortfallQty": "Physical shortfall", "physicalDays": "Physical days", "totalDays": "Total days",
        "targetDays": "Target days", "dailyDemand": "Daily demand", "band": "Band", "sortBy": "Sort by this column",
        "regionTotals": "Totals per region", "facilities": "Facilities", "positions": "Positions", "physicalQty": "On hand",
        "contractQty": "Contract reserve", "capacityQty": "Capacity reserve", "expiringQty": "Expiring", "total": "Total",
        "cover": "Cover per item", "layers": "Reserve layers", "physical": "Physical", "contract": "Contract", "capacity": "Capacity",
        "days": "d", "unbounded": "no demand", "lots": "Lots and expiry", "lot": "Lot", "expiry": "Expiry", "quantity": "Quantity",
        "expiring": "expiring", "expired": "expired", "noExpiry": "none", "inTransit": "Orders in transit", "order": "Order",
        "from": "From", "to": "To", "status": "Status", "recent": "Recent movements", "kindLabel": "Kind", "reason": "Reason",
        "occurredAt": "Occurred", "recordedBy": "Recorded by", "balanceAfter": "Balance after", "none": "None",
        "kind.receipt": "Receipt", "kind.issue": "Issue (consumption)", "kind.adjustment": "Adjustment (loss/found)", "kind.count": "Count",
        "kind.transfer_out": "Transfer out", "kind.transfer_in": "Transfer in",
        "obTitle": "Entries on this device", "obSend": "Send now", "ob.online": "Online", "ob.offline": "Offline: entries are kept on this device and sent when the network is back",
        "ob.listsAsOf": "Lists as of", "ob.counts": "{w} waiting · {a} need attention", "ob.lastSent": "last sent", "ob.signIn": "sign in again to send",
        "ob.saved": "Saved on this device", "ob.storageFailed": "Could not save on this device; this entry was not kept", "ob.onHand": "on hand",
        "st.waiting": "Waiting", "st.recorded": "Recorded", "st.replay": "Recorded (sent again, counted once)", "st.refused": "Needs attention",
        "st.otherUser": "Waiting for {user} to sign in",
        "entryIntro": "A scanned item code followed by Enter moves to the next field. Each form counts once: submitting it again changes nothing.",
        "itemHint": "Item code; scan it", "lotHint": "Lot number; scan it", "expiryHint": "For receipts, YYYY-MM-DD",
        "quantityHint": "Whole base units; for a count, the counted figure", "reasonHint": "An adjustment needs a reason",
        "adjustReason": "Adjustment reason", "reason.loss": "Lost", "reason.damage": "Damaged", "reason.expired": "Expired write-off",
        "reason.found": "Found", "note": "Note", "submit": "Record",
        "recorded": "Recorded", "replayed": "This form was already submitted; nothing was counted twice", "newBalance": "Item on hand here",
        "lotBalance": "Lot on hand", "errors": "Please correct the following",
        "err.id": "The form id is invalid; reload the page", "err.facility": "Choose a facility", "err.item": "Enter the item code",
        "err.lot": "Enter the lot", "err.kind": "Choose a kind", "err.quantity": "A whole number above zero (a count may be 0)",
        "err.unavailableTitle": "Temporarily unavailable", "err.unavailable": "The database is briefly unavailable (restarting or recovering). Nothing recorded is lost; reload this page in a few seconds, and a form may be submitted again with the same id.",
        "err.expiry": "Expiry must be YYYY-MM-DD", "err.expiryNeeded": "This item expires: a new lot needs its expiry the first time it is received",
        "err.held": "This lot is on hold (recall or inspection): it cannot be issued or dispatched", "err.reason": "An adjustment needs a reason (lost, damaged, expired or found)",
        "err.occurred_at": "Invalid time", "err.unknown": "Unknown item or facility code", "err.stock": "Not enough stock for this",
        "err.conflict": "This form id was used for a different movement; reload the page", "err.expiryMismatch": "This lot is recorded with another expiry",
        "err.forbidden": "Your token does not record for this facility", "err.csrf": "The form has expired; reload the page",
        "err.busy": "The service is busy; submit the same form again shortly",
        "band.stockout": "stock-out", "band.<3d": "under 3 d", "band.3-7d": "3–7 d", "band.7-14d": "7–14 d",
        "band.14-N": "14 d to target", "band.>=N": "at target",
        "notFound": "No such facility, or not yours to see", "forbidden": "Your role may not use this page",
        "orders": "Reallocation orders", "actions": "Actions", "approve": "Approve", "cancel": "Cancel", "dispatch": "Dispatch",
        "receive": "Receive", "receivedOf": "Received of", "shortReason": "Why less arrived (needed when short)", "cancelReason": "Reason to cancel", "err.action": "Unknown action",
        "err.order": "This order cannot take that step", "status.proposed": "proposed", "status.approved": "approved",
        "status.dispatched": "in transit", "status.received": "received", "status.cancelled": "cancelled",
        "report": "Nightly reorder report", "noReport": "No nightly report for this date yet (stockpile nightly makes it each night)",
        "printable": "Printable page", "downloadCSV": "Download CSV", "firstRows": "the page shows the first 50 rows; the CSV has them all",
    ]
}
