import Foundation

/// A small district whose nightly report is worked out by hand in the tests (NightlyTests,
/// NightlyAPITests). As of 2026-11-22 (Asia/Shanghai), every target 30 days, no issues recorded, so
/// daily demand is the full-load plan:
///
/// - N95: H1 100/day holds 500 (5 days, short 2500); H2 10/day holds 400 (surplus 100); warehouse W
///   holds 300 with no demand (surplus 300, last movement 2026-11-01: stale). Contracts of H1: K1
///   non-local lead 3 d, 1000 left; K2 local lead 10 d, 800 left; K3 local, expired 2026-11-17; K4
///   local, lead 45 d (beyond the target). Pledges of H1: P1 local certified 20/day ramp-up 25 d;
///   P2 uncertified; P3 non-local certified 5/day no ramp-up.
/// - GOWN: H1 20/day holds 1000 (50 days); H2 5/day holds lot GX of 800 expiring 2027-01-21 (60
///   days): 300 used, 500 left to expire; C1 2/day holds 200 (100 days, last movement 2026-11-01).
/// - GLOVE: C1 10/day holds none (short 300; contract K5 valid only from 2026-12-01); X, in the
///   other district E, 4/day holds none (short 120). Neither has ever moved: stale.
public enum NightlyDistrict {
    public static let asOf = "2026-11-22"

    public static let files: [String: String] = [
        "regions": "code,name,parent_code\nC,示范市,\nD,第一区,C\nE,第二区,C\n",
        "facilities": """
            code,name,kind,region_code,beds,latitude,longitude,designated
            H1,第一人民医院,hospital,D,500,30.00,114.00,true
            H2,第二人民医院,hospital,D,300,30.10,114.00,false
            W,第一区储备库,warehouse,D,0,30.00,114.10,false
            C1,第一卫生院,clinic,D,20,30.11,114.00,false
            X,第二区卫生院,clinic,E,20,31.00,115.00,false

            """,
        "items": """
            code,name,category,unit,target_days,shelf_life_days,expires
            N95,N95口罩,ppe,只,30,,false
            GOWN,医用防护服,ppe,件,30,,false
            GLOVE,医用手套,consumable,副,30,,false

            """,
        "demand": """
            facility_code,item_code,full_load_daily
            H1,N95,100
            H2,N95,10
            H1,GOWN,20
            H2,GOWN,5
            C1,GOWN,2
            C1,GLOVE,10
            X,GLOVE,4

            """,
        "contracts": """
            code,facility_code,supplier,item_code,quantity,called_off,lead_time_days,valid_from,valid_to,local
            K1,H1,外地供应商,N95,1200,200,3,2026-01-01,2027-12-31,false
            K2,H1,本地防护用品厂,N95,800,0,10,2026-01-01,2027-12-31,true
            K3,H1,本地老厂,N95,5000,0,5,2026-01-01,2026-11-17,true
            K4,H1,本地远期供应商,N95,3000,0,45,2026-01-01,2027-12-31,true
            K5,C1,手套厂,GLOVE,1000,0,3,2026-12-01,2027-12-31,true

            """,
        "capacity": """
            code,facility_code,manufacturer,item_code,daily_capacity,ramp_up_days,valid_from,valid_to,certified,local
            P1,H1,本地生产企业,N95,20,25,2026-01-01,2027-12-31,true,true
            P2,H1,未认证企业,N95,500,0,2026-01-01,2027-12-31,false,true
            P3,H1,外地生产企业,N95,5,0,2026-01-01,2027-12-31,true,false

            """,
        "movements": """
            id,facility_code,item_code,lot,expiry,kind,quantity,occurred_at,reason
            6f1c0d0a-0001-4000-8000-000000000001,H1,N95,NA,2027-06-30,receipt,500,2026-11-20T09:00:00+08:00,采购入库
            6f1c0d0a-0001-4000-8000-000000000002,W,N95,NW,,receipt,300,2026-11-01T09:00:00+08:00,储备入库
            6f1c0d0a-0001-4000-8000-000000000003,H2,N95,NH,,receipt,400,2026-11-20T09:00:00+08:00,采购入库
            6f1c0d0a-0001-4000-8000-000000000004,H1,GOWN,GH,,receipt,1000,2026-11-20T09:00:00+08:00,采购入库
            6f1c0d0a-0001-4000-8000-000000000005,H2,GOWN,GX,2027-01-21,receipt,800,2026-11-20T09:00:00+08:00,采购入库
            6f1c0d0a-0001-4000-8000-000000000006,C1,GOWN,GC,,receipt,200,2026-11-01T09:00:00+08:00,采购入库

            """,
    ]
}
