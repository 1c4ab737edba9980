-- Two databases on the compose file's PostgreSQL: duban's own and Prefect's.
CREATE ROLE duban LOGIN PASSWORD 'CHANGE-ME';
CREATE DATABASE duban OWNER duban;
CREATE ROLE prefect LOGIN PASSWORD 'CHANGE-ME';
CREATE DATABASE prefect OWNER prefect;
